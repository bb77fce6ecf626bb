#include <criterion/criterion.h>
Test(probe, ok) {}
