-- What a key may do: 'bot' (everything of the bot API) or 'read' (reads only: dashboards, exports).
alter table api_keys add column scope text not null default 'bot';
