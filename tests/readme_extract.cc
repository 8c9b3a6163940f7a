// Extracts the ```cpp blocks of README.md into one C++ file that compiles
// them, so that a README whose code no longer compiles breaks the build.
// #include lines go to the top (a blank line keeps the numbering); every
// other line of a block becomes the body of a function returning
// thaw::Status (the blocks use THAW_RETURN_IF_ERROR). Errors point at
// README.md's lines.
//
// Usage: readme_extract README.md out.cc
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: readme_extract README.md out.cc\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "readme_extract: cannot read " << argv[1] << "\n";
    return 1;
  }
  std::vector<std::string> includes;
  std::vector<std::vector<std::string>> blocks;
  std::string line;
  bool inside = false;
  int number = 0;
  std::vector<int> starts;
  while (std::getline(in, line)) {
    ++number;
    if (!inside && line == "```cpp") {
      inside = true;
      blocks.emplace_back();
      starts.push_back(number + 1);
      continue;
    }
    if (inside && line == "```") {
      inside = false;
      continue;
    }
    if (!inside) continue;
    if (line.rfind("#include", 0) == 0) {
      includes.push_back(line);
      line.clear();
    }
    blocks.back().push_back(line);
  }
  if (inside || blocks.empty()) {
    std::cerr << "readme_extract: " << argv[1] << ": " << (inside ? "an unclosed" : "no")
              << " ```cpp block\n";
    return 1;
  }
  std::ofstream out(argv[2]);
  out << "// Generated from " << argv[1] << " by tests/readme_extract.cc: do not edit.\n";
  out << "#include <cstdint>\n#include <vector>\n";
  for (const std::string& include : includes) out << include << "\n";
  for (size_t b = 0; b < blocks.size(); ++b) {
    out << "\n// README.md line " << starts[b] << "\n";
    out << "thaw::Status ReadmeBlock" << b << "() {\n";
    out << "#line " << starts[b] << " \"README.md\"\n";
    for (const std::string& l : blocks[b]) out << l << "\n";
    out << "  return thaw::Status::Ok();\n}\n";
  }
  return out ? 0 : 1;
}
