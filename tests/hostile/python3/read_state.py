# SPDX-License-Identifier: MIT
"""Read spored's state dir (event.paths: the dir, its functions/, files in it): not in the root."""
from hostile_common import each_path, try_read

DEFAULT_PATHS = []


def handler(event, context):
    return each_path(event, DEFAULT_PATHS, try_read)
