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
}

}  // namespace lockscope
