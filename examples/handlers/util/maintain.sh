#!/bin/sh
# Maintenance everywhere: `cnspr query util.maintain` asks every device and prints each
# one's answer: its free disk space, uptime, and the packages waiting for an upgrade.
echo "disk: $(df -h / | awk 'NR == 2 { print $4 " free of " $2 }')"
echo "up: $(uptime -p 2>/dev/null || uptime)"
if command -v apt >/dev/null 2>&1; then
    echo "upgradable: $(apt list --upgradable 2>/dev/null | grep -c upgradable)"
fi
