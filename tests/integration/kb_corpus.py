"""A small Tasklane help-centre fixture for knowledge-base tests (not context/)."""

from __future__ import annotations

GUIDE = """# Tasklane help centre

## Reset your password

If you forgot your password, open the sign-in page and choose "Forgot password". Tasklane
emails you a reset link that is valid for one hour. Pick a new password of at least twelve
characters. Signed-in sessions on other devices are signed out after a password reset.

## Two-factor authentication

Turn on two-factor authentication (2FA) under Profile > Security. Scan the QR code with an
authenticator app such as Google Authenticator or 1Password and enter the six-digit code.
Keep your recovery codes somewhere safe: they let you in if you lose your phone.

## Invite members to a workspace

Owners and Admins invite teammates from Workspace settings > Members > Invite. Enter one or
more email addresses and choose a role. Invitations expire after seven days and can be
resent. Guests only see the projects they are added to.

## Roles and permissions

A workspace has four roles: Owner, Admin, Member and Guest. Owners manage billing and can
delete the workspace. Admins manage members and integrations. Members create projects and
tasks. Guests collaborate on the projects shared with them.

## Connect Slack

Install the Slack integration from Integrations > Slack and approve the permissions in
Slack. Choose a channel for each project to receive task updates, and use the /tasklane
command to create tasks from Slack messages.

## Export your data

Export projects and tasks as CSV or JSON from Workspace settings > Data > Export. Large
exports are prepared in the background and a download link is emailed to you. Attachments
are included as links.

## Recurring tasks

Make a task repeat by opening it and choosing Repeat: daily, weekly, monthly or a custom
schedule. A recurring task creates its next copy when the current one is completed.
"""

APPS = """# Mobile apps

## Offline mode on iOS and Android

The Tasklane mobile apps keep your recent projects available offline. Changes you make
without a connection sync automatically when you are back online. Conflicts are resolved
in favour of the most recent edit.

## Push notifications

Choose which push notifications you receive in the app under Settings > Notifications:
mentions, assignments, due soon reminders and comments.
"""

QUESTIONS = [
    ("How do I reset my password? I forgot it", "Reset your password"),
    ("how can I invite my teammates to our workspace", "Invite members to a workspace"),
    ("Can I connect Tasklane to Slack?", "Connect Slack"),
    ("I want to export all my tasks to a CSV file", "Export your data"),
    ("how to make a task repeat every week", "Recurring tasks"),
    ("enable 2FA with an authenticator app", "Two-factor authentication"),
    ("does the android app work offline?", "Offline mode on iOS and Android"),
    ("what permissions does the Admin role have", "Roles and permissions"),
]

IRRELEVANT = [
    "What's the weather like in Paris tomorrow?",
    "Recommend me a good pizza recipe",
    "Who won the football match last night",
    "asdf qwerty zxcv",
]
