// See raw_journal.hpp.
#include "tests/support/raw_journal.hpp"

#include <stdexcept>
#include <vector>

#include <rocksdb/db.h>

namespace banger::test {

std::string be64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8)
    s[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return s;
}

struct raw_journal::impl {
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> cf;

  rocksdb::ColumnFamilyHandle* family(const std::string& name) {
    auto it = cf.find(name);
    if (it == cf.end())
      throw std::runtime_error("raw_journal: no column family " + name);
    return it->second;
  }
  ~impl() {
    for (auto* h : handles)
      db->DestroyColumnFamilyHandle(h);
    delete db;
  }
};

raw_journal::raw_journal(const std::filesystem::path& dir) : impl_(std::make_unique<impl>()) {
  rocksdb::Options o;
  std::vector<std::string> names;
  auto s = rocksdb::DB::ListColumnFamilies(o, dir.string(), &names);
  if (!s.ok())
    throw std::runtime_error("raw_journal: " + s.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (auto& n : names)
    descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  s = rocksdb::DB::Open(o, dir.string(), descs, &impl_->handles, &impl_->db);
  if (!s.ok())
    throw std::runtime_error("raw_journal: " + s.ToString());
  for (std::size_t i = 0; i < names.size(); ++i)
    impl_->cf[names[i]] = impl_->handles[i];
}

raw_journal::~raw_journal() = default;

void raw_journal::put(const std::string& family, const std::string& key, const std::string& value) {
  auto s = impl_->db->Put(rocksdb::WriteOptions(), impl_->family(family), key, value);
  if (!s.ok())
    throw std::runtime_error("raw_journal put: " + s.ToString());
}

void raw_journal::del(const std::string& family, const std::string& key) {
  auto s = impl_->db->Delete(rocksdb::WriteOptions(), impl_->family(family), key);
  if (!s.ok())
    throw std::runtime_error("raw_journal delete: " + s.ToString());
}

std::optional<std::string> raw_journal::get(const std::string& family, const std::string& key) {
  std::string v;
  auto s = impl_->db->Get(rocksdb::ReadOptions(), impl_->family(family), key, &v);
  if (s.IsNotFound())
    return std::nullopt;
  if (!s.ok())
    throw std::runtime_error("raw_journal get: " + s.ToString());
  return v;
}

void raw_journal::put_event(std::uint64_t seq, const std::string& stream, std::uint64_t version,
                            const std::string& bytes) {
  put("events", be64(seq), bytes);
  put("streams", stream + '\0' + be64(version), be64(seq));
}

} // namespace banger::test
