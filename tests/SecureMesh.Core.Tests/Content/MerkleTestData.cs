using System.Buffers.Binary;
using SecureMesh.Core.Content;

namespace SecureMesh.Core.Tests.Content;

/// <summary>An independent, deliberately naive statement of the tree construction, to check the real one against.</summary>
internal static class MerkleTestData
{
    public const int ChunkSize = ChunkLayout.MinChunkSize;

    public static byte[] RandomData(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static byte[] ReferenceLeaf(ReadOnlySpan<byte> chunk) => Blake3.Hasher.Hash(chunk).AsSpan().ToArray();

    public static byte[] ReferenceNode(byte[] left, byte[] right) => Keyed(DeriveKey("SecureMesh 2026 content tree node v1"), [.. left, .. right]);

    private static byte[] DeriveKey(string context)
    {
        using var hasher = Blake3.Hasher.NewDeriveKey(context);
        return hasher.Finalize().AsSpan().ToArray();
    }

    private static byte[] Keyed(byte[] key, byte[] input)
    {
        using var hasher = Blake3.Hasher.NewKeyed(key);
        hasher.Update(input);
        return hasher.Finalize().AsSpan().ToArray();
    }

    public static byte[] ReferenceTop(List<byte[]> nodes)
    {
        while (nodes.Count > 1)
        {
            var next = new List<byte[]>();
            for (var i = 0; i + 1 < nodes.Count; i += 2)
            {
                next.Add(ReferenceNode(nodes[i], nodes[i + 1]));
            }
            if (nodes.Count % 2 == 1)
            {
                next.Add(nodes[^1]);
            }
            nodes = next;
        }
        return nodes[0];
    }

    public static ContentId ReferenceId(byte[] data, int chunkSize)
    {
        var leaves = new List<byte[]>();
        if (data.Length == 0)
        {
            leaves.Add(ReferenceLeaf([]));
        }
        for (var offset = 0; offset < data.Length; offset += chunkSize)
        {
            leaves.Add(ReferenceLeaf(data.AsSpan(offset, Math.Min(chunkSize, data.Length - offset))));
        }
        var top = ReferenceTop(leaves);
        var rootInput = new byte[8 + 4 + 32];
        BinaryPrimitives.WriteUInt64LittleEndian(rootInput, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(rootInput.AsSpan(8), (uint)chunkSize);
        top.CopyTo(rootInput, 12);
        return ContentId.FromHash(Keyed(DeriveKey("SecureMesh 2026 content root v1"), rootInput));
    }

    public static MerkleTree BuildInMemory(byte[] data, int chunkSize)
    {
        var count = (int)ChunkLayout.ChunkCount(data.Length, chunkSize);
        var leaves = new byte[count * 32];
        for (var i = 0; i < count; i++)
        {
            var length = ChunkLayout.ChunkLength(data.Length, chunkSize, i);
            MerkleHash.Leaf(data.AsSpan(i * chunkSize, length), leaves.AsSpan(i * 32, 32));
        }
        return MerkleTree.Build(leaves, data.Length, chunkSize);
    }

    public static ReadOnlySpan<byte> Chunk(byte[] data, int chunkSize, long index) =>
        data.AsSpan((int)(index * chunkSize), ChunkLayout.ChunkLength(data.Length, chunkSize, index));
}
