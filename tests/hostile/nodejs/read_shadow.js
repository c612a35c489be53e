// SPDX-License-Identifier: MIT
// Read the host's secrets: /etc/shadow and friends are not in the instance's root.
'use strict';
const { eachPath, tryRead } = require('./hostile_common');

exports.handler = async (event) =>
    eachPath(event, ['/etc/shadow', '/etc/gshadow', '/root', '/etc/sudoers'], tryRead);
