#!/bin/sh
# The container's entry point: start sshd for App Service's SSH (as root, which it needs), then run the bot
# as the unprivileged user `syncdoctor`, replacing this shell (PID 1 is the bot: SIGTERM reaches it).
set -eu
if [ "$(id -u)" != 0 ]; then
    exec "$@"                           # run as a non-root user already (runAsNonRoot, --user): no sshd
fi
# sshd only where App Service's SSH reaches it (WEBSITE_SITE_NAME is set there), or when asked for.
if [ "${SYNC_DOCTOR_SSH:-auto}" = "on" ] || { [ "${SYNC_DOCTOR_SSH:-auto}" = "auto" ] && [ -n "${WEBSITE_SITE_NAME:-}" ]; }; then
    ssh-keygen -A >/dev/null           # this container's own host keys (none are baked into the image)
    mkdir -p /run/sshd
    /usr/sbin/sshd -e                   # daemonizes; logs to the container's stderr
fi
exec setpriv --reuid=syncdoctor --regid=syncdoctor --init-groups -- "$@"
