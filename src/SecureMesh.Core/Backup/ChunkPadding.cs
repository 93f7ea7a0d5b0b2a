using System.Buffers;

namespace SecureMesh.Core.Backup;

/// <summary>
/// Files are cut into chunks of <see cref="ChunkSize"/> (1 MiB) bytes, the last one shorter; each chunk is zero-padded
/// before it is sealed to a size bucket: the next power of two from 4 KiB to 1 MiB (4, 8, 16, … 512 KiB, 1 MiB). So a
/// holder sees only whole 1 MiB blobs and one power-of-two tail per file: a file's size to within a factor of two for
/// its last MiB, never its exact size (a file of 0 to 4 KiB is one 4 KiB bucket). The real chunk lengths are in the
/// encrypted catalog (file size and chunk size give them).
/// </summary>
public static class ChunkPadding
{
    /// <summary>Plaintext bytes per chunk (the last chunk of a file may be shorter).</summary>
    public const int ChunkSize = 1 << 20;

    /// <summary>The smallest bucket.</summary>
    public const int MinBucket = 4096;

    /// <summary>The largest sealed chunk a holder can be sent: the largest bucket plus the cipher's overhead.</summary>
    public const int MaxSealedChunk = ChunkSize + BackupCipher.Overhead;

    /// <summary>The bucket a chunk of <paramref name="length"/> bytes is padded to.</summary>
    public static int BucketFor(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, ChunkSize);
        return length <= MinBucket ? MinBucket : (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)length);
    }

    /// <summary>Chunks in a file of <paramref name="fileSize"/> bytes (an empty file has one empty chunk).</summary>
    public static long ChunkCount(long fileSize) => fileSize == 0 ? 1 : (fileSize + ChunkSize - 1) / ChunkSize;

    /// <summary>The length of chunk <paramref name="index"/> of a file of <paramref name="fileSize"/> bytes.</summary>
    public static int ChunkLength(long fileSize, long index) => (int)Math.Min(ChunkSize, fileSize - (index * ChunkSize));

    /// <summary>Pads and seals one chunk; returns the sealed blob.</summary>
    public static byte[] SealChunk(BackupKeys keys, ReadOnlySpan<byte> chunk)
    {
        var bucket = BucketFor(chunk.Length);
        var padded = ArrayPool<byte>.Shared.Rent(bucket);
        try
        {
            chunk.CopyTo(padded);
            padded.AsSpan(chunk.Length, bucket - chunk.Length).Clear();
            return BackupCipher.Seal(keys, BlobKind.Chunk, padded.AsSpan(0, bucket));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(padded, clearArray: true);
        }
    }

    /// <summary>
    /// Opens a sealed chunk expected to hold <paramref name="length"/> bytes into <paramref name="destination"/>; false when
    /// it does not decrypt or its bucket is not the one that length pads to.
    /// </summary>
    public static bool TryOpenChunk(BackupKeys keys, ReadOnlySpan<byte> blob, int length, Span<byte> destination)
    {
        if (length < 0 || length > ChunkSize || destination.Length < length || BackupCipher.PlaintextLength(blob.Length) != BucketFor(length))
        {
            return false;
        }
        var bucket = BucketFor(length);
        var padded = ArrayPool<byte>.Shared.Rent(bucket);
        try
        {
            if (!BackupCipher.TryOpen(keys, BlobKind.Chunk, blob, padded.AsSpan(0, bucket)))
            {
                return false;
            }
            padded.AsSpan(0, length).CopyTo(destination);
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(padded, clearArray: true);
        }
    }
}
