#include <cblas.h>
int main(void) { return openblas_get_parallel() != 2; }
