// The OpenMP placement probe as a C++ program (g++ -fopenmp): the probe's
// C code compiled as C++, with a C++ main.
#include <string>

#include "omp_probe_lib.c"

int main()
{
  const std::string lang = "c++";
  return omp_probe_report(lang.c_str());
}
