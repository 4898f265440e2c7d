// C++ allocation sites at known lines, for buddy-report's tests (SymbolizeTests): operator new,
// std::vector and std::string allocate through the standard library's plumbing (operator new,
// std::allocator, _M_create..., all inlined from /usr/include), which buddy-report skips by
// default, so each site's top frame is the line below. Built with -g -O1.
#include <cstdio>
#include <string>
#include <vector>

struct Node {
    std::string name;
    std::vector<int> values;
};

__attribute__((noinline)) static Node *make_node(int i) {
    Node *node = new Node; // SITE new
    node->values.assign(32, i); // SITE vector
    node->name = std::string(100, 'x'); // SITE string
    return node;
}

int main() {
    std::vector<Node *> nodes;
    nodes.reserve(5000);
    for (int i = 0; i < 5000; i++) nodes.push_back(make_node(i));
    std::printf("%zu %s\n", nodes.size(), nodes.back()->name.c_str());
    return 0;
}
