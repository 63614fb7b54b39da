#include "guest/agent/sysinfo.hpp"

#include <boost/test/unit_test.hpp>

using namespace banger::guest;

BOOST_AUTO_TEST_SUITE(guest_sysinfo)

BOOST_AUTO_TEST_CASE(tcp_listeners_decoded_in_host_byte_order) {
  // 127.0.0.1:8080 listening, 0.0.0.0:22 listening, one established connection (skipped).
  const char* text =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0 100 0 0 10 0\n"
    "   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0 100 0 0 10 0\n"
    "   2: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 555 1 0 20 4 30 10 "
    "-1\n";
  auto ports = parse_proc_net(text, "tcp");
  BOOST_REQUIRE(ports.size() == 2u);
  BOOST_TEST(ports[0].address == "127.0.0.1");
  BOOST_TEST(ports[0].port == 8080);
  BOOST_TEST(ports[0].inode == 1234u);
  BOOST_TEST(ports[1].address == "0.0.0.0");
  BOOST_TEST(ports[1].port == 22);
  BOOST_TEST(ports[1].protocol == "tcp");
}

BOOST_AUTO_TEST_CASE(tcp6_listeners) {
  // :: port 22 and ::1 port 5432.
  const char* text =
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr "
    "tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 "
    "00:00000000 00000000     0        0 777 1 0 100 0 0 10 0\n"
    "   1: 00000000000000000000000001000000:1538 00000000000000000000000000000000:0000 0A 00000000:00000000 "
    "00:00000000 00000000     0        0 778 1 0 100 0 0 10 0\n";
  auto ports = parse_proc_net(text, "tcp6");
  BOOST_REQUIRE(ports.size() == 2u);
  BOOST_TEST(ports[0].address == "::");
  BOOST_TEST(ports[0].port == 22);
  BOOST_TEST(ports[1].address == "::1");
  BOOST_TEST(ports[1].port == 5432);
  BOOST_TEST(ports[1].protocol == "tcp6");
}

BOOST_AUTO_TEST_CASE(bound_udp_sockets_but_not_connected_ones) {
  // 0.0.0.0:5353 bound; 10.0.0.2:40000 connected to 10.0.0.1:53; [::]:123 bound.
  const char* v4 = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode "
                   "ref pointer drops\n"
                   "  1: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4321 2 0 "
                   "0\n"
                   "  2: 0200000A:9C40 0100000A:0035 01 00000000:00000000 00:00000000 00000000     0        0 4322 2 0 "
                   "0\n";
  auto ports = parse_proc_net(v4, "udp");
  BOOST_REQUIRE(ports.size() == 1u);
  BOOST_TEST(ports[0].protocol == "udp");
  BOOST_TEST(ports[0].port == 5353);
  BOOST_TEST(ports[0].inode == 4321u);
  const char* v6 = "  sl  local_address                         remote_address                        st tx_queue "
                   "rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
                   "   0: 00000000000000000000000000000000:007B 00000000000000000000000000000000:0000 07 "
                   "00000000:00000000 00:00000000 00000000     0        0 999 2 0 0\n";
  ports = parse_proc_net(v6, "udp6");
  BOOST_REQUIRE(ports.size() == 1u);
  BOOST_TEST(ports[0].address == "::");
  BOOST_TEST(ports[0].port == 123);
  BOOST_TEST(ports[0].protocol == "udp6");
}

BOOST_AUTO_TEST_CASE(meminfo_in_bytes) {
  auto m = parse_meminfo("MemTotal:         131072 kB\nMemAvailable:      65536 kB\nHugePages_Total:       0\n");
  BOOST_TEST(m["MemTotal"] == 131072ull * 1024);
  BOOST_TEST(m["MemAvailable"] == 65536ull * 1024);
  BOOST_TEST(m["HugePages_Total"] == 0u);
}

BOOST_AUTO_TEST_CASE(proc_stat_busy_idle_and_cpu_count) {
  auto t = parse_proc_stat("cpu  100 20 30 400 50 6 4 0 0 0\ncpu0 50 10 15 200 25 3 2 0 0 0\n"
                           "cpu1 50 10 15 200 25 3 2 0 0 0\nintr 12345\n",
                           100);
  BOOST_TEST(t.count == 2u);
  BOOST_TEST(t.busy_ms == (100 + 20 + 30 + 6 + 4) * 10u);
  BOOST_TEST(t.idle_ms == (400 + 50) * 10u);
}

BOOST_AUTO_TEST_CASE(live_system_is_readable) {
  auto s = read_system_stats();
  BOOST_TEST(s.uptime_ms > 0u);
  BOOST_TEST(s.cpu_count >= 1u);
  BOOST_TEST(s.mem_total > s.mem_available);
  BOOST_TEST(s.root_total > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
