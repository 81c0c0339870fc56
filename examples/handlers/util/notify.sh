#!/bin/sh
# Desktop notifications on every device: `cnspr event util.notify "the build is done"`.
# The notification says which device sent it.
exec notify-send --app-name=cnspr "from ${CNSPRCY_ORIGIN_NAME:-a device}" "$(head -c 4096)"
