"""The email channel: alerts as plain-text emails over SMTP (OPSBENCH_EMAIL_TO and OPSBENCH_SMTP_*).

render.py   notices -> one email row each (subject on the first line, then the text)
channel.py  EmailChannel: sends a row over SMTP and says which SMTP answers are worth a retry
"""
