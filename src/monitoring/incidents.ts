import { randomBytes } from 'node:crypto';
import { componentStates, type ComponentState, type ComponentStatus } from './status-model.js';

/**
 * Incidents opened and resolved from the component verdicts, with the timeline of a public status
 * page: investigating → monitoring → resolved. One open incident per component at a time.
 *
 * First cut: kept in this process (the last `keep` incidents), so each instance has its own book and a
 * restart forgets it. Sharing them (a table) is the next step once several instances should agree.
 */
export type IncidentPhase = 'investigating' | 'monitoring' | 'resolved';

export interface TimelineEntry {
  at: string;
  phase: IncidentPhase;
  state: ComponentState;
  /** Measured cause (details). */
  message: string;
  publicMessage: string;
}

export interface Incident {
  id: string;
  componentId: string;
  componentName: string;
  phase: IncidentPhase;
  /** The worst state seen during the incident. */
  impact: ComponentState;
  startedAt: string;
  resolvedAt: string | null;
  timeline: TimelineEntry[];
}

export class IncidentBook {
  private readonly incidents: Incident[] = [];
  /** When each open incident's component last became operational. */
  private readonly recoveredAt = new Map<string, number>();

  constructor(
    private readonly recoveryMs: number,
    private readonly keep = 50,
  ) {}

  /** Feeds one round of verdicts; opens, updates and resolves incidents. */
  update(current: ComponentStatus[], now: Date): void {
    // A component that is no longer reported (its connector was removed, its backlog drained) counts as recovered.
    const gone: ComponentStatus[] = this.incidents
      .filter((i) => i.phase !== 'resolved' && !current.some((c) => c.id === i.componentId))
      .map((i) => ({ id: i.componentId, name: i.componentName, state: 'operational', cause: `${i.componentName} operational.`, publicCause: 'Operational.' }));
    for (const c of [...current, ...gone]) {
      const open = this.openFor(c.id);
      if (c.state !== 'operational') {
        if (!open) {
          this.incidents.push({
            id: `inc_${now.getTime().toString(36)}${randomBytes(3).toString('hex')}`,
            componentId: c.id,
            componentName: c.name,
            phase: 'investigating',
            impact: c.state,
            startedAt: now.toISOString(),
            resolvedAt: null,
            timeline: [entry(now, 'investigating', c)],
          });
          while (this.incidents.length > this.keep) this.incidents.shift();
          continue;
        }
        this.recoveredAt.delete(open.id);
        const last = open.timeline.at(-1)!;
        if (open.phase === 'monitoring' || last.state !== c.state) {
          open.phase = 'investigating';
          open.timeline.push(entry(now, 'investigating', c));
        }
        if (rank(c.state) > rank(open.impact)) open.impact = c.state;
        continue;
      }
      if (!open) continue;
      if (open.phase === 'investigating') {
        open.phase = 'monitoring';
        open.timeline.push(entry(now, 'monitoring', c, 'Recovered; watching that it holds. '));
        this.recoveredAt.set(open.id, now.getTime());
      } else if (now.getTime() - (this.recoveredAt.get(open.id) ?? now.getTime()) >= this.recoveryMs) {
        open.phase = 'resolved';
        open.resolvedAt = now.toISOString();
        open.timeline.push(entry(now, 'resolved', c, 'Resolved. '));
        this.recoveredAt.delete(open.id);
      }
    }
  }

  /** Newest first. */
  list(): Incident[] {
    return [...this.incidents].reverse();
  }

  private openFor(componentId: string): Incident | undefined {
    return this.incidents.find((i) => i.componentId === componentId && i.phase !== 'resolved');
  }
}

function entry(now: Date, phase: IncidentPhase, c: ComponentStatus, prefix = ''): TimelineEntry {
  return { at: now.toISOString(), phase, state: c.state, message: prefix + c.cause, publicMessage: prefix + c.publicCause };
}

function rank(state: ComponentState): number {
  return componentStates.indexOf(state);
}
