/** Desk agents: who answers chats on the built-in desk, as every part reads them. */
export const presences = ['available', 'away'] as const;
export type Presence = (typeof presences)[number];

/** An agent answers chats; a supervisor also oversees the team (docs/desk.md, "Supervisors"). */
export const roles = ['agent', 'supervisor'] as const;
export type Role = (typeof roles)[number];

export interface Agent {
  id: string;
  tenantId: string;
  email: string;
  name: string;
  /** null: every desk queue of the tenant. */
  queueIds: string[] | null;
  maxChats: number;
  presence: Presence;
  role: Role;
  /** Disabled by an admin: cannot sign in (the row stays for the chats and notes it wrote). */
  disabled: boolean;
}
