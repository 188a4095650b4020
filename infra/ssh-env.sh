# /etc/profile.d/sync-doctor-env.sh: an SSH session sees the app's settings.
#
# App Service gives its app settings (and the managed identity's IDENTITY_ENDPOINT / IDENTITY_HEADER) to the
# container's main process only; sshd starts sessions with a clean environment. So that `python -m bot
# check-config` in an SSH session tests what the bot runs with, a login shell takes them from the bot's
# process (PID 1) as they are now: nothing is written to disk.
_sync_doctor_env="${SYNC_DOCTOR_ENV_FROM:-/proc/1/environ}"
if [ -n "${BASH_VERSION:-}" ] && [ -r "$_sync_doctor_env" ]; then  # root's login shell is bash
    while IFS= read -r -d '' _sync_doctor_pair; do
        case "${_sync_doctor_pair%%=*}" in
            HOME|PWD|OLDPWD|SHLVL|USER|LOGNAME|SHELL|MAIL|TERM|_|*[!A-Za-z0-9_]*) ;;
            *) export "$_sync_doctor_pair" ;;
        esac
    done < "$_sync_doctor_env"
fi
unset _sync_doctor_env _sync_doctor_pair
