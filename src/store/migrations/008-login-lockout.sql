-- Sign-in lockout: consecutive failed passwords per agent, and until when the account refuses sign-ins.
alter table agents add column failed_logins int not null default 0;
alter table agents add column locked_until timestamptz;
