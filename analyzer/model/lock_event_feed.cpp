#include "lock_event_feed.hpp"

namespace lockscope {

EventRole role_of_event(std::string_view event_name) {
  using Type = EventRole::Type;
  if (event_name == probes::contention_tracepoints[0]) return {Type::contention_begin, nullptr};
  if (event_name == probes::contention_tracepoints[1]) return {Type::contention_end, nullptr};
  const probes::ProbeRow* row = probes::find_probe_by_event(event_name);
  if (row == nullptr) return {};
  switch (row->role) {
    case probes::Role::acquire: return {Type::acquire, row};
    case probes::Role::release: return {Type::release, row};
    case probes::Role::trylock_entry: return {Type::trylock_entry, row};
    case probes::Role::trylock_return: return {Type::trylock_return, row};
  }
  return {};
}

void LockEventFeed::on_metadata(const perf::Metadata& metadata) {
  decoder_ = std::make_unique<LockEventDecoder>(metadata);
  roles_.clear();
  for (size_t i = 0; i < metadata.events.size(); ++i) roles_.push_back(role_of_event(decoder_->event_name(i)));
  each([&](LockEventConsumer& consumer) {
    consumer.on_metadata(metadata);
    consumer.on_lock_events_known(*decoder_, roles_);
  });
}

void LockEventFeed::on_sample(const perf::Sample& sample) {
  each([&](LockEventConsumer& consumer) { consumer.on_sample(sample); });
  if (!decoder_) return;
  const LockEvent* event = decoder_->decode(sample);
  // The decoder and roles_ cover the same events (the metadata's): an event announced later (pipe
  // mode) decodes to nullptr, so every decoded event has its role.
  if (event == nullptr) return;
  const EventRole& role = roles_[sample.event->index];
  each([&](LockEventConsumer& consumer) { consumer.on_lock_event(sample, *event, role); });
  if (role.type == EventRole::Type::trylock_entry) on_trylock_entry(sample, *event, role);
  if (role.type == EventRole::Type::trylock_return) on_trylock_return(sample, *event, role);
}

uint64_t execution_context_key(const perf::Sample& sample, ExecContext context) {
  if (context == ExecContext::task && sample.tid != 0) return sample.tid;
  return (uint64_t{1} << 40) | (uint64_t{sample.cpu} << 8) | static_cast<uint64_t>(context);
}

void LockEventFeed::on_trylock_entry(const perf::Sample& sample, const LockEvent& event, const EventRole& role) {
  if (!event.lock) return;
  PendingTrylock& trylock = trylocks_[execution_context_key(sample, event.context)];
  settle(trylock, std::nullopt);
  trylock.pending = true;
  trylock.sample = sample;
  trylock.sample.raw = {};
  trylock.callchain.resize(sample.callchain.size());
  for (uint64_t i = 0; i < sample.callchain.size(); ++i) trylock.callchain[i] = sample.callchain[i];
  trylock.sample.callchain =
      perf::Callchain(reinterpret_cast<const std::byte*>(trylock.callchain.data()), trylock.callchain.size());
  trylock.event = event;
  trylock.event.sample = &trylock.sample;
  trylock.role = role;
}

void LockEventFeed::on_trylock_return(const perf::Sample& sample, const LockEvent& event, const EventRole& role) {
  auto found = trylocks_.find(execution_context_key(sample, event.context));
  if (found == trylocks_.end() || !found->second.pending || found->second.role.row->function != role.row->function) {
    each([&](LockEventConsumer& consumer) { consumer.on_trylock_result_without_entry(sample); });
    return;
  }
  settle(found->second, event.ret.value_or(0) != 0);
}

void LockEventFeed::settle(PendingTrylock& trylock, std::optional<bool> taken) {
  if (!trylock.pending) return;
  trylock.pending = false;
  TrylockOutcome outcome{trylock.sample, trylock.event, trylock.role, taken};
  each([&](LockEventConsumer& consumer) { consumer.on_trylock(outcome); });
}

void LockEventFeed::settle_all_trylocks() {
  for (auto& [key, trylock] : trylocks_) settle(trylock, std::nullopt);
}

}  // namespace lockscope
