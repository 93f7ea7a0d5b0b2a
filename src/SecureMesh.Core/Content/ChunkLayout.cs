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
    /// Default chunk size: 1 MiB. Chosen by measurement (ChunkSizeBenchmarks, see the benchmark project): indexing runs at
    /// the same BLAKE3-bound speed for 256 KiB, 1 MiB and 4 MiB, and proof checking costs under 1% of chunk hashing at
    /// 1 MiB, so hashing does not decide. What decides is the swarm: 1 MiB keeps a lost or bad chunk cheap to re-fetch
    /// and spreads a file over many peers, while keeping the leaf table of a 100 GB file at 3.2 MB and the request
    /// rate at about one message per MiB.
    /// </summary>
    public const int DefaultChunkSize = 1024 * 1024;

    /// <summary>True when <paramref name="chunkSize"/> is a power of two between 16 KiB and 16 MiB.</summary>
    public static bool IsValidChunkSize(int chunkSize) =>
        chunkSize >= MinChunkSize && chunkSize <= MaxChunkSize && (chunkSize & (chunkSize - 1)) == 0;

    /// <summary>Number of chunks in a file: at least one, even for an empty file.</summary>
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
