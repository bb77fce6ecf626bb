#include <mpi.h>
int main(void) {
    float x = 1;
    MPI_Init(NULL, NULL);
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    return MPI_Finalize();
}
