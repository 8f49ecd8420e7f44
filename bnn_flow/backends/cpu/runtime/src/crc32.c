/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), identical to zlib.crc32: the .bnn checksum. */
#include "bnn_internal.h"

uint32_t bnn_crc32(const void *data, size_t size) {
    uint32_t table[256]; /* built per call (2k steps, once per model load): no shared state, no races */
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int b = 0; b < 8; b++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    const unsigned char *p = (const unsigned char *)data;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}
