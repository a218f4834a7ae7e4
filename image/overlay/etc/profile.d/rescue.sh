# rescue image: environment for every login shell, and the list of attached disks at login.
export LIBGUESTFS_PATH=/usr/lib/rescue/appliance
case "$-" in
*i*)
	if [ -z "${RESCUE_DISKS_SHOWN:-}" ] && command -v rescue-disks >/dev/null; then
		export RESCUE_DISKS_SHOWN=1
		rescue-disks
	fi
	;;
esac
