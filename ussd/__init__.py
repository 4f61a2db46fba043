"""The USSD channel: a pure state machine (`machine.step`), its menus, a Redis session
store and the Africa's Talking callback (`http.bp`), plus the terminal phone (`cli`)."""
