namespace SecureMesh.Core.Content;

/// <summary>How a file of a given size splits into fixed-size chunks: every chunk is <c>chunkSize</c> bytes except the last, which may be shorter.</summary>
/// <remarks>
/// A zero-length file has exactly one chunk, of length zero, so every file has a tree with at least one leaf.
/// </remarks>
public static class ChunkLayout
{
    /// <summary>Smallest chunk size accepted (16 KiB).</summary>
    public const int MinChunkSize = 16 * 1024;

    /// <summary>Largest chunk size accepted (16 MiB).</summary>
    public const int MaxChunkSize = 16 * 1024 * 1024;

    /// <summary>
    /// Default chunk size: 1 MiB, chosen by measurement on the 2-core build machine (ChunkSizeBenchmarks and
    /// IndexingBenchmarks in tests/SecureMesh.Benchmarks; figures per CPU-second, so other load on the machine cancels out).
    /// Leaf hashing: 5.8 / 6.0 / 6.1 GB per CPU-second at 256 KiB / 1 MiB / 4 MiB; indexing a 2 GiB file from the page cache
    /// with both cores: 9.4 / 9.4 / 9.5 GB/s (4.9 GB/s on one core), so hashing does not decide between them.
    /// A proof costs one keyed BLAKE3 call (about 0.2 µs) per tree level: about 5% of verifying a 256 KiB chunk, 2% at
    /// 1 MiB, 1% at 4 MiB. 256 KiB therefore loses about 10% per byte to per-chunk costs, while 4 MiB gains nothing
    /// measurable over 1 MiB and quadruples the cost of a bad or lost chunk and the granularity of spreading a download
    /// over peers. 1 MiB also keeps a 100 GB file's leaf table at 3.2 MB and the request rate at one message per MiB.
    /// </summary>
    public const int DefaultChunkSize = 1024 * 1024;

    /// <summary>
    /// The most chunks a file may have: 2^18 = 262,144. A hard limit that the manifest decoder, the Have message, the
    /// bitfields and the hash tree all enforce, so that no manifest, even from a trusted peer, can make a downloader
    /// allocate more than its bookkeeping for this many chunks. That bookkeeping is at most about 100 bytes a chunk at
    /// its peak (the leaf hash of each chunk written, 32 bytes; the check before release holds the leaves and the
    /// upper levels of the tree, 64 bytes; the download order, 4 bytes; a few bits of chunk maps), so about 26 MB at
    /// the cap, far below the 150 MB a download may cost. It still allows 4 GiB files at the smallest chunk size,
    /// 256 GiB at the default 1 MiB and 4 TiB at the largest (16 MiB); a larger file needs a larger chunk size.
    /// (The old implicit cap, 67,108,863 chunks, let one manifest cost gigabytes.)
    /// </summary>
    public const long MaxChunkCount = 1L << 18;

    /// <summary>True when a file of <paramref name="fileSize"/> bytes in <paramref name="chunkSize"/>-byte chunks stays within <see cref="MaxChunkCount"/>.</summary>
    public static bool IsWithinChunkCap(long fileSize, int chunkSize) =>
        fileSize >= 0 && chunkSize > 0 && ChunkCount(fileSize, chunkSize) <= MaxChunkCount;

    /// <summary>True when <paramref name="chunkSize"/> is a power of two between 16 KiB and 16 MiB.</summary>
    public static bool IsValidChunkSize(int chunkSize) =>
        chunkSize >= MinChunkSize && chunkSize <= MaxChunkSize && (chunkSize & (chunkSize - 1)) == 0;

    /// <summary>Number of chunks in a file: at least one, even for an empty file; 0 for a negative size or chunk size.</summary>
    public static long ChunkCount(long fileSize, int chunkSize)
    {
        if (fileSize < 0 || chunkSize <= 0)
        {
            return 0;
        }
        return fileSize == 0 ? 1 : ((fileSize - 1) / chunkSize) + 1;
    }

    /// <summary>Length of chunk <paramref name="index"/>, or -1 when the index is out of range.</summary>
    public static int ChunkLength(long fileSize, int chunkSize, long index)
    {
        var count = ChunkCount(fileSize, chunkSize);
        if (index < 0 || index >= count)
        {
            return -1;
        }
        var offset = index * chunkSize;
        return (int)Math.Min(chunkSize, fileSize - offset);
    }

    /// <summary>Byte offset of chunk <paramref name="index"/> in the file.</summary>
    public static long ChunkOffset(int chunkSize, long index) => index * chunkSize;
}
