// Powering the guest off: the ACPI power button (KEY_POWER on /dev/input/event*) and the stop
// itself: SIGTERM to everything, up to 3 s for it to exit, SIGKILL, sync, /root unmounted, / made
// read-only, reboot(RB_POWER_OFF). Runs in PID 1.
#pragma once

#include <string>
#include <vector>

#include "guest/init/services.hpp"

namespace banger::guest::init {

/// Every /dev/input/event* opened non-blocking: where a power button press arrives.
std::vector<int> open_power_buttons();

[[noreturn]] void power_off(std::vector<service>& svcs, const std::string& why);

} // namespace banger::guest::init
