// Deletes one object twice (CxxOperatorTests.deletingTwiceIsCaught): operator delete is the
// library's free, which catches the second delete. Prints "deleted twice" when it returns.
#include <cstdio>

struct Node {
    long value[6];
};

int main() {
    Node *volatile node = new Node();
    delete node;
    delete node;
    std::printf("deleted twice\n");
    return 0;
}
