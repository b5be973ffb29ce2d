-- An agent can be disabled (someone who left, credentials that leaked): they can no longer sign in, and
-- their sessions end. The row stays, so the chats they held and the notes they wrote keep their author.
-- The release before this one does not read the column: during a rolling update its instances still let
-- a disabled agent sign in, until they are replaced.
alter table agents add column if not exists disabled_at timestamptz;
