# SPDX-License-Identifier: MIT
"""Read the host's secrets: /etc/shadow and friends are not in the instance's root."""
from hostile_common import each_path, try_read

DEFAULT_PATHS = ["/etc/shadow", "/etc/gshadow", "/root", "/etc/sudoers"]


def handler(event, context):
    return each_path(event, DEFAULT_PATHS, try_read)
