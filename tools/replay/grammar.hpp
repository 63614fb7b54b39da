// A VM stream's grammar (schema/events.capnp, actors/vm/vm.hpp) as one pure function: which
// event may follow a stream whose fold so far is a given vm_state. `verify` checks every VM
// stream with it and `rerun` checks every effect (an event no command decided) with it. No I/O.
//
//   phase            events that may follow
//   absent, deleted  vm_command{create} (accepted), vm_created: a (new) life begins
//   stopped          vm_command, vm_configured, vm_starting, vm_deleting
//   starting         vm_command, resource_intended, resource_acquired, resource_released,
//                    vm_running, vm_start_failed
//   running          vm_command, vm_stopping, vm_adopted
//   stopping         vm_command, resource_released, vm_stopped
//   deleting         vm_command, resource_released, vm_deleted
// plus the invariants: a resource is acquired only after its intent, released only while held,
// and nothing is held at vm_deleted. Journals from before vm_command existed (a life with no
// command record) delete from stopped, releasing there: stopped also takes resource_released
// and vm_deleted.
#pragma once

#include <string>

#include "actors/vm/vm.hpp"
#include "journal/events.hpp"

namespace banger::replay {

/// Why `e` may not follow a VM stream whose events so far fold into `s` ("" when it may).
/// `commands_recorded`: whether the current life has vm_command records (new journals).
std::string vm_grammar_violation(const actors::vm_state& s, const journal::stored_event& e, bool commands_recorded);

} // namespace banger::replay
