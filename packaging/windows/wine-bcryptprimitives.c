/* Smoke test only: Wine 8 (Debian 12) lacks bcryptprimitives.dll, from
 * which Rust's standard library takes ProcessPrng for random numbers
 * (Windows 10 and later have it). smoke.sh builds this stand-in with
 * MinGW into the test's own Wine prefix when Wine has none; it fills the
 * buffer from RtlGenRandom (advapi32's SystemFunction036). It is never
 * shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
