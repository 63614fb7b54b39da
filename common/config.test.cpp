// config.toml parsing: defaults, every key, comments, and errors naming the line.
#include <boost/test/unit_test.hpp>

#include "common/config.hpp"

using namespace banger;

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(defaults_and_keys) {
  auto d = parse_config("", "c");
  BOOST_TEST_REQUIRE(d.has_value());
  BOOST_TEST(d->bridge == "br-fc");
  BOOST_TEST(d->network);
  BOOST_TEST(d->boot_snapshots);
  auto c = parse_config("# banger\nbridge = \"br-fc-t1\"  # test bridge\n\nsubnet=\"10.77.0.0/24\"\nnat = true\n"
                        "network = false\nboot_snapshots = false\n",
                        "c");
  BOOST_TEST_REQUIRE(c.has_value(), (c ? "" : c.err().message));
  BOOST_TEST(c->bridge == "br-fc-t1");
  BOOST_TEST(c->subnet == "10.77.0.0/24");
  BOOST_TEST(c->nat);
  BOOST_TEST(!c->network);
  BOOST_TEST(!c->boot_snapshots);
}

BOOST_AUTO_TEST_CASE(errors_name_the_line) {
  auto e = parse_config("nat = true\nbrdge = \"x\"\n", "/etc/banger/config.toml");
  BOOST_TEST_REQUIRE(!e.has_value());
  BOOST_TEST(e.err().message.find("/etc/banger/config.toml:2: unknown key `brdge`") != std::string::npos,
             e.err().message);
  BOOST_TEST(!parse_config("nat = yes", "c").has_value());
  BOOST_TEST(!parse_config("bridge = br-fc", "c").has_value());
  BOOST_TEST(!parse_config("bridge", "c").has_value());
  BOOST_TEST(!parse_config("bridge = \"a\\\"b\"", "c").has_value());
}

BOOST_AUTO_TEST_CASE(file_sync_tables) {
  auto c = parse_config("nat = true\n\n[[file_sync]]\nhost = \"~/.gitconfig\"\nguest = \"/root/.gitconfig\"\n"
                        "mode = 0o600\n[[file_sync]] # the editor's setup\nhost = \"~/.config/nvim\"\n"
                        "guest = \"/root/.config/nvim\"\nmode = \"644\"\n",
                        "c");
  BOOST_TEST_REQUIRE(c.has_value(), (c ? "" : c.err().message));
  BOOST_TEST(c->nat);
  BOOST_TEST_REQUIRE(c->file_sync.size() == 2u);
  BOOST_TEST(c->file_sync[0].host == "~/.gitconfig");
  BOOST_TEST(c->file_sync[0].guest == "/root/.gitconfig");
  BOOST_TEST(*c->file_sync[0].mode == 0600u);
  BOOST_TEST(c->file_sync[0].line == 3u);
  BOOST_TEST(c->file_sync[1].host == "~/.config/nvim");
  BOOST_TEST(*c->file_sync[1].mode == 0644u);
  auto no_mode = parse_config("[[file_sync]]\nhost = \"~/a\"\nguest = \"/root/a\"\n", "c");
  BOOST_TEST_REQUIRE(no_mode.has_value());
  BOOST_TEST(!no_mode->file_sync[0].mode.has_value());
}

BOOST_AUTO_TEST_CASE(images_table) {
  auto d = parse_config("", "c");
  BOOST_TEST_REQUIRE(d.has_value());
  BOOST_TEST(d->images.insecure_registries.empty());
  BOOST_TEST(d->images.max_layer_entries == 1'000'000u);
  auto c = parse_config("nat = true\n[images]\ninsecure_registries = [\"localhost:5000\", \"10.0.0.1\",]\n"
                        "max_layer_bytes = 1_048_576\nmax_layer_entries = 50\nmax_rootfs_bytes = 4096\n"
                        "[[file_sync]]\nhost = \"~/a\"\nguest = \"/root/a\"\n",
                        "c");
  BOOST_TEST_REQUIRE(c.has_value(), (c ? "" : c.err().message));
  BOOST_TEST(c->nat);
  BOOST_TEST(c->images.insecure_registries == (std::vector<std::string>{"localhost:5000", "10.0.0.1"}));
  BOOST_TEST(c->images.insecure("localhost:5000"));
  BOOST_TEST(!c->images.insecure("localhost:5001"));
  BOOST_TEST(c->images.max_layer_bytes == 1048576u);
  BOOST_TEST(c->images.max_layer_entries == 50u);
  BOOST_TEST(c->images.max_rootfs_bytes == 4096u);
  BOOST_TEST(c->file_sync.size() == 1u);
  auto empty = parse_config("[images]\ninsecure_registries = []\n", "c");
  BOOST_TEST_REQUIRE(empty.has_value());
  BOOST_TEST(empty->images.insecure_registries.empty());

  auto why = [](std::string_view text) {
    auto r = parse_config(text, "c");
    return r ? std::string("(accepted)") : r.err().message;
  };
  BOOST_TEST(why("[images]\nmax_layer_bytes = -1\n").find("c:2: max_layer_bytes takes a positive integer") !=
             std::string::npos);
  BOOST_TEST(why("[images]\nmax_layer_entries = 0\n").find("positive integer") != std::string::npos);
  BOOST_TEST(why("[images]\nmax_layer_bytes = 99999999999999999999999\n").find("positive integer") !=
             std::string::npos);
  BOOST_TEST(why("[images]\ninsecure_registries = \"localhost:5000\"\n").find("array") != std::string::npos);
  BOOST_TEST(why("[images]\ninsecure_registries = [\"a/b\"]\n").find("is not a registry") != std::string::npos);
  BOOST_TEST(why("[images]\ninsecure_registries = [localhost]\n").find("quoted string") != std::string::npos);
  BOOST_TEST(why("[images]\nnat = true\n").find("unknown key `nat` in [images]") != std::string::npos);
  BOOST_TEST(why("[images]\n[images]\n").find("c:2: [images] appears twice") != std::string::npos);
  BOOST_TEST(why("[image]\n").find("unknown table `[image]`") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(file_sync_errors) {
  auto why = [](std::string_view text) {
    auto c = parse_config(text, "c");
    return c ? std::string("(accepted)") : c.err().message;
  };
  BOOST_TEST(why("[[file_sync]]\nhost = \"~/a\"\n").find("c:1: [[file_sync]] needs `guest`") != std::string::npos);
  BOOST_TEST(why("[[file_sync]]\nguest = \"/root/a\"\n[[file_sync]]\n").find("c:1: [[file_sync]] needs `host`") !=
             std::string::npos);
  BOOST_TEST(why("[[file_sync]]\nhost = \"~/a\"\nguest = \"/etc/a\"\n")
               .find("c:3: file_sync guest path /etc/a is not "
                     "below /root") != std::string::npos);
  BOOST_TEST(why("[[file_sync]]\nhost = \"~/a\"\nguest = \"/root/\"\n").find("not below /root") != std::string::npos);
  BOOST_TEST(why("[[file_sync]]\nmode = 0o1777\n").find("c:2: file_sync mode 1777 is not an octal mode") !=
             std::string::npos);
  BOOST_TEST(why("[[file_sync]]\nmode = \"0x1\"\n").find("is not an octal mode") != std::string::npos);
  BOOST_TEST(why("[[file_sync]]\nnat = true\n").find("c:2: unknown key `nat` in [[file_sync]]") != std::string::npos);
  BOOST_TEST(why("[network]\n").find("c:1: unknown table `[network]`") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
