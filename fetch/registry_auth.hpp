// The pieces of registry authentication that are text, not transport (issue #13; the OCI
// distribution spec's token flow and Docker's credential file):
//   - a WWW-Authenticate challenge (RFC 7235: `Bearer realm="...",service="...",scope="..."`,
//     or `Basic realm="..."`) parsed into its scheme and parameters;
//   - the token request URL a Bearer challenge asks for;
//   - credentials for a registry from ~/.docker/config.json's `auths` (what docker login and
//     skopeo write): `auth` (base64 of user:password) or `username`/`password`.
// Every input is outside input: malformed text is an error naming what is wrong, never an
// exception.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace banger::fetch {

struct auth_challenge {
  std::string scheme;                        ///< lowercase: "bearer", "basic"
  std::map<std::string, std::string> params; ///< names lowercase, values unquoted
};

/// Parses one challenge. errc::bad_request for an empty header, a scheme that is not a token,
/// or parameters that are not `name=token` / `name="quoted"` separated by commas.
expected<auth_challenge> parse_auth_challenge(std::string_view header);

/// The URL to GET a token from for `c` (a Bearer challenge with a realm): the realm with
/// `service` and `scope` (the challenge's, or `scope` when given) as query parameters. The realm
/// must be an absolute http(s) URL, and https when `registry_is_https` (credentials never go in
/// clear to a realm a TLS registry names).
expected<std::string> token_url(const auth_challenge& c, bool registry_is_https,
                                std::optional<std::string> scope = std::nullopt);

struct credentials {
  std::string username, password;
};

/// The credentials docker config.json text `config_json` holds for `registry` (as in
/// oci_reference::registry; docker.io is also found under Docker's index URL), or nothing. A
/// file that is not JSON, an `auths` that is not an object, or an entry whose auth is not
/// base64 of "user:password" is an error naming the file's part.
expected<std::optional<credentials>> docker_config_credentials(std::string_view config_json, std::string_view registry);

} // namespace banger::fetch
