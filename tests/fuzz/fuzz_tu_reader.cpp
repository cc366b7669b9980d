// libFuzzer target: the TU dataset reader (engine/data/tu_dataset.cpp, text_reader.cpp) on every
// file of a dataset, plain and gzip.
//
// Input layout (tests/fuzz/corpus/tu_reader/ has examples):
//   byte 0: options: bits 0-2 feature mode (mod 6), bit 3 keep_self_loops, bits 4-7 max_nodes (0: all)
//   then up to six sections separated by the line "~~": graph_indicator, graph_labels, A,
//   node_labels, node_attributes, edge_labels. The first byte of a section says how it is stored:
//     'p' FZ_<part>.txt          'z' FZ_<part>.txt.gz (the rest, gzip-compressed here)
//     'r' FZ_<part>.txt.gz with the raw bytes (corrupt or not gzip)
//     'b' both .txt and .txt.gz of the same text   'd' both, the .gz without the last byte of text
//     anything else: the file is absent
// Every outcome but InputError on bad input is a finding: a crash, a sanitizer report, another
// exception (an internal error where the user deserves exit 2), or a time-out.
#include <zlib.h>

#include <cstdlib>

#include "engine/core/error.hpp"
#include "engine/data/dataset.hpp"
#include "tests/fuzz/fuzz_util.hpp"

namespace {

void write_gzip(const std::filesystem::path& path, std::string_view text) {
  gzFile out = gzopen(path.c_str(), "wb1");
  if (!out) std::abort();
  if (!text.empty() && gzwrite(out, text.data(), static_cast<unsigned>(text.size())) != static_cast<int>(text.size()))
    std::abort();
  gzclose(out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffpool;
  if (size < 1) return 0;
  const auto folder = fuzz::scratch_dir() / "FZ";
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);

  DatasetOptions options;
  options.data_dir = fuzz::scratch_dir().string();
  options.features = static_cast<FeatureMode>((data[0] & 7) % 6);
  options.keep_self_loops = (data[0] & 8) != 0;
  options.max_nodes = data[0] >> 4;
  options.degree_cap = 4;
  options.constant_dim = 3;

  static const char* const kParts[] = {"graph_indicator", "graph_labels", "A",
                                       "node_labels",     "node_attributes", "edge_labels"};
  auto sections = fuzz::split(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), "\n~~\n");
  for (std::size_t i = 0; i < sections.size() && i < std::size(kParts); ++i) {
    std::string_view section = sections[i];
    if (section.empty()) continue;
    const char how = section.front();
    section.remove_prefix(1);
    const auto plain = folder / (std::string("FZ_") + kParts[i] + ".txt");
    const auto gzip = folder / (std::string("FZ_") + kParts[i] + ".txt.gz");
    switch (how) {
      case 'p': fuzz::write_bytes(plain, section); break;
      case 'z': write_gzip(gzip, section); break;
      case 'r': fuzz::write_bytes(gzip, section); break;
      case 'b':
        fuzz::write_bytes(plain, section);
        write_gzip(gzip, section);
        break;
      case 'd':
        fuzz::write_bytes(plain, section);
        write_gzip(gzip, section.substr(0, section.empty() ? 0 : section.size() - 1));
        break;
      default: break;
    }
  }
  try {
    GraphDataset dataset = load_tu_dataset("FZ", options);
    // What the rest of the program relies on: one label per graph, one feature row per node.
    if (dataset.labels.size() + 1 != dataset.node_offsets.size() ||
        dataset.features.size() != static_cast<std::size_t>(dataset.num_nodes() * dataset.num_features) ||
        dataset.adjacency_offsets.size() != static_cast<std::size_t>(dataset.num_nodes() + 1) ||
        dataset.num_classes() < 2) {
      std::abort();
    }
  } catch (const InputError&) {
  }
  return 0;
}
