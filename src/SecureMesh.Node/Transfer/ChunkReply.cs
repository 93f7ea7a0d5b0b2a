using System.Buffers;
using SecureMesh.Core.Content;

namespace SecureMesh.Node.Transfer;

/// <summary>A received chunk: its bytes and proof are slices of a pooled receive buffer, returned on dispose.</summary>
public sealed class ChunkReply : IDisposable
{
    private IMemoryOwner<byte>? _owner;

    internal ChunkReply(long index, ReadOnlyMemory<byte> data, MerkleProof proof, IMemoryOwner<byte>? owner)
    {
        Index = index;
        Data = data;
        Proof = proof;
        _owner = owner;
    }

    /// <summary>The chunk index the peer says this is.</summary>
    public long Index { get; }

    /// <summary>The chunk bytes (unverified until checked).</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The proof sent with it.</summary>
    public MerkleProof Proof { get; }

    /// <summary>Returns the receive buffer.</summary>
    public void Dispose() => Interlocked.Exchange(ref _owner, null)?.Dispose();
}
