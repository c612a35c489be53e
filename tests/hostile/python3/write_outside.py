# SPDX-License-Identifier: MIT
"""Write outside /tmp: /var/task/x, /etc/x, /x, /usr/x, /dev/x (event.paths to change them): every
one must fail (EROFS: the root, /etc, /usr and the code are read-only)."""
from hostile_common import each_path, try_write

DEFAULT_PATHS = ["/var/task/x", "/etc/x", "/x", "/usr/x", "/dev/x"]


def handler(event, context):
    return each_path(event, DEFAULT_PATHS, try_write)
