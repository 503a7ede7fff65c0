#!/bin/sh
# Writes the page from the environment, then serves it, logging every request (-v).
mkdir -p /www
echo "$GREETING ($VERSION)" > /www/index.html
echo "serving $VERSION on :8080"
exec /bin/busybox httpd -f -v -p 8080 -h /www
