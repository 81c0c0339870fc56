#!/bin/sh
# "Ring my phone": `cnspr send phone util.ring` makes it ring (a sound, and an urgent
# notification that stays until dismissed), wherever it lies.
notify-send --urgency=critical --app-name=cnspr "Ringing" "${CNSPRCY_ORIGIN_NAME:-a device} is looking for this device"
for sound in /usr/share/sounds/freedesktop/stereo/phone-incoming-call.oga \
    /usr/share/sounds/freedesktop/stereo/bell.oga; do
    if [ -f "$sound" ] && command -v paplay >/dev/null 2>&1; then
        exec paplay "$sound"
    fi
done
