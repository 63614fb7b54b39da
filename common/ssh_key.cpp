// See ssh_key.hpp. The private key file's layout is OpenSSH's PROTOCOL.key: a magic string, the
// cipher, KDF and its options ("none", "none", empty), the key count, the public key blob, then
// the private section (two equal check words, the key type, public key, the 64-byte private key
// as seed followed by public key, the comment, padding 1, 2, 3... to the cipher's 8-byte block).
#include "common/ssh_key.hpp"

#include <array>
#include <cstdint>
#include <memory>

#include <fmt/core.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/base64.hpp"

namespace banger {

namespace {

constexpr std::string_view key_type = "ssh-ed25519";
constexpr std::size_t key_len = 32;

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void put_string(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

std::string public_blob(std::string_view pub) {
  std::string b;
  put_string(b, key_type);
  put_string(b, pub);
  return b;
}

bool printable_word(std::string_view s) {
  for (char c : s)
    if (c <= ' ' || c > '~')
      return false;
  return true;
}

} // namespace

expected<ssh_keypair> generate_ed25519_key(std::string_view comment) {
  if (comment.empty() || comment.size() > 255 || !printable_word(comment))
    return make_error(errc::bad_request, "an ssh key comment must be 1-255 printable characters without spaces");
  std::array<unsigned char, key_len> seed{}, pub{};
  std::uint32_t check = 0;
  if (RAND_bytes(seed.data(), static_cast<int>(seed.size())) != 1 ||
      RAND_bytes(reinterpret_cast<unsigned char*>(&check), sizeof check) != 1)
    return make_error(errc::operation_failed, "the system's random source failed (OpenSSL RAND_bytes)");
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
    EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()), &EVP_PKEY_free);
  std::size_t pub_len = pub.size();
  if (!key || EVP_PKEY_get_raw_public_key(key.get(), pub.data(), &pub_len) != 1 || pub_len != key_len)
    return make_error(errc::operation_failed, "OpenSSL could not derive an Ed25519 public key");
  std::string_view pub_view(reinterpret_cast<const char*>(pub.data()), pub.size());
  std::string secret(reinterpret_cast<const char*>(seed.data()), seed.size());
  secret.append(pub_view);

  std::string priv;
  put_u32(priv, check);
  put_u32(priv, check);
  put_string(priv, key_type);
  put_string(priv, pub_view);
  put_string(priv, secret);
  put_string(priv, comment);
  for (char pad = 1; priv.size() % 8 != 0; ++pad)
    priv.push_back(pad);

  std::string file("openssh-key-v1", 15); // the magic, with its NUL
  put_string(file, "none");
  put_string(file, "none");
  put_string(file, "");
  put_u32(file, 1);
  put_string(file, public_blob(pub_view));
  put_string(file, priv);
  OPENSSL_cleanse(seed.data(), seed.size());
  OPENSSL_cleanse(secret.data(), secret.size());

  ssh_keypair out;
  auto armoured = base64_encode(file);
  OPENSSL_cleanse(priv.data(), priv.size());
  OPENSSL_cleanse(file.data(), file.size());
  out.private_key = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  for (std::size_t i = 0; i < armoured.size(); i += 70)
    out.private_key += armoured.substr(i, 70) + "\n";
  out.private_key += "-----END OPENSSH PRIVATE KEY-----\n";
  OPENSSL_cleanse(armoured.data(), armoured.size());
  out.public_key = fmt::format("{} {} {}\n", key_type, base64_encode(public_blob(pub_view)), comment);
  return out;
}

} // namespace banger
