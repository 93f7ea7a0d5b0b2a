using System.Buffers.Binary;
using Blake3;

namespace SecureMesh.Core.Content;

/// <summary>
/// The three BLAKE3 constructions of the content tree, each with its own one-byte domain prefix so a leaf can never be
/// taken for an inner node or a root, and an inner node never for a leaf:
/// <list type="bullet">
/// <item>leaf i: <c>BLAKE3(0x00 || chunk_i)</c></item>
/// <item>inner node: <c>BLAKE3(0x01 || left || right)</c> (two 32-byte child hashes)</item>
/// <item>content root: <c>BLAKE3(0x02 || u64le(fileSize) || u32le(chunkSize) || top)</c>, binding the size and chunk size
/// into the content ID so a manifest cannot lie about them without every chunk failing.</item>
/// </list>
/// A level with an odd number of nodes promotes its last node unchanged to the next level (no duplication, no padding).
/// </summary>
internal static class MerkleHash
{
    public const int HashLength = 32;
    public const byte LeafPrefix = 0x00;
    public const byte NodePrefix = 0x01;
    public const byte RootPrefix = 0x02;

    private static ReadOnlySpan<byte> LeafPrefixBytes => [LeafPrefix];

    public static void Leaf(ReadOnlySpan<byte> chunk, Span<byte> destination)
    {
        using var hasher = Hasher.New();
        hasher.Update(LeafPrefixBytes);
        hasher.Update(chunk);
        hasher.Finalize(destination[..HashLength]);
    }

    public static void Node(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right, Span<byte> destination)
    {
        Span<byte> input = stackalloc byte[1 + (2 * HashLength)];
        input[0] = NodePrefix;
        left[..HashLength].CopyTo(input[1..]);
        right[..HashLength].CopyTo(input[(1 + HashLength)..]);
        Hasher.Hash(input, destination[..HashLength]);
    }

    public static void Root(ReadOnlySpan<byte> top, long fileSize, int chunkSize, Span<byte> destination)
    {
        Span<byte> input = stackalloc byte[1 + 8 + 4 + HashLength];
        input[0] = RootPrefix;
        BinaryPrimitives.WriteUInt64LittleEndian(input[1..], (ulong)fileSize);
        BinaryPrimitives.WriteUInt32LittleEndian(input[9..], (uint)chunkSize);
        top[..HashLength].CopyTo(input[13..]);
        Hasher.Hash(input, destination[..HashLength]);
    }

    /// <summary>Number of sibling hashes in the proof of leaf <paramref name="index"/> of a tree with <paramref name="leafCount"/> leaves.</summary>
    public static int ProofLength(long leafCount, long index)
    {
        var length = 0;
        var width = leafCount;
        var position = index;
        while (width > 1)
        {
            // The last node of an odd level has no sibling: it is promoted.
            if ((position & 1) == 1 || position + 1 < width)
            {
                length++;
            }
            position >>= 1;
            width = (width + 1) >> 1;
        }
        return length;
    }
}
