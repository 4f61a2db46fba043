"""The operator console (#14): `/console`, a web channel for the people who run
Harambee (support, finance, admin). Like `ussd/` and `sms/`, it reads a request,
calls one core use case or read, and shows the result; it never writes money rows
or commits. Its parts:

- `access.py`: logins (Flask-Login, argon2 and TOTP in `core/operators.py`), CSRF on
  every form (Flask-WTF), the cookie's flags, and `requires(...)`, the role check on
  every view and action;
- `book.py`: the dashboard, loans, agents; `people.py`: members and disputes;
  `community.py`: groups, stories, data-rights cases (#16);
  `money.py`: the money desk; `admin.py`: the audit log, operators, settings;
- `render.py`: pages, CSV exports, refusals as words; `charts.py`: server-drawn SVG.

docs/console.md says what each role may do and how each figure is defined.
"""
