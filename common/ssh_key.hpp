// Ed25519 ssh keys made in-process (OpenSSL), written in OpenSSH's own formats: the private key
// as an unencrypted "openssh-key-v1" file (what `ssh-keygen -t ed25519 -N ''` writes, and what
// sshd reads with -h), the public key as a one-line "ssh-ed25519 <base64> <comment>". The daemon
// makes each VM's host key this way: at native speed on the host rather than with ssh-keygen
// under the guest's TCG, and known_hosts is then written from the host's own copy. Pure
// computation; any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace banger {

struct ssh_keypair {
  std::string private_key; ///< the whole openssh-key-v1 file, PEM-armoured, ending in a newline
  std::string public_key;  ///< "ssh-ed25519 <base64 blob> <comment>\n"
};

/// A fresh Ed25519 key pair from the system's random source. `comment` goes into both files; it
/// must be printable ASCII without spaces (a VM's name is), else bad_request.
expected<ssh_keypair> generate_ed25519_key(std::string_view comment);

} // namespace banger
