// The one main() of every Boost.Test executable (each module's tests link it).
#define BOOST_TEST_MODULE banger
#include <boost/test/unit_test.hpp>
