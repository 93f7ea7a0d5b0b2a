using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Content;

/// <summary>
/// A publisher's signed description of one file: name, size, chunk size, content ID, publisher and creation time.
/// It never lists leaf hashes, so it stays under 410 bytes for any file size; proofs travel with the chunks.
/// </summary>
/// <remarks>
/// Encoding (all integers big-endian, total length exact, nothing after the signature):
/// <c>u8 version(=1) | u16 nameLength(1..255) | name UTF-8 | u64 size(≤ 2^63-1) | u32 chunkSize | 32 root |
/// 32 publisher Ed25519 key | i64 created (Unix ms) | 64 signature</c>.
/// The signature is Ed25519 by the publisher over <c>"securemesh-manifest-v1:" || every byte before the signature</c>.
/// The name is only length-capped here; making it safe to use as a file name is the quarantine's job.
/// A manifest describing more than <see cref="ChunkLayout.MaxChunkCount"/> chunks is malformed: it can be created (to
/// test that others refuse it) but never decodes or verifies.
/// </remarks>
public sealed class Manifest
{
    /// <summary>Current encoding version.</summary>
    public const byte Version = 1;

    /// <summary>Largest name, in UTF-8 bytes.</summary>
    public const int MaxNameBytes = 255;

    /// <summary>Largest encoded manifest.</summary>
    public const int MaxEncodedLength = FixedLength + MaxNameBytes;

    private const int FixedLength = 1 + 2 + 8 + 4 + ContentId.HashLength + PeerId.PublicKeyLength + 8 + NodeIdentity.SignatureLength;
    private const long MinUnixMs = -62_135_596_800_000;
    private const long MaxUnixMs = 253_402_300_799_999;

    private static ReadOnlySpan<byte> Domain => "securemesh-manifest-v1:"u8;

    private readonly byte[] _encoded;

    private Manifest(byte[] encoded, string name, long size, int chunkSize, ContentId id, PeerId publisher, DateTimeOffset created)
    {
        _encoded = encoded;
        Name = name;
        Size = size;
        ChunkSize = chunkSize;
        ContentId = id;
        Publisher = publisher;
        Created = created;
    }

    /// <summary>File name as the publisher gave it (untrusted; sanitize before use).</summary>
    public string Name { get; }

    /// <summary>File size in bytes.</summary>
    public long Size { get; }

    /// <summary>Chunk size in bytes.</summary>
    public int ChunkSize { get; }

    /// <summary>Number of chunks.</summary>
    public long ChunkCount => ChunkLayout.ChunkCount(Size, ChunkSize);

    /// <summary>Content ID (tree root bound to size and chunk size).</summary>
    public ContentId ContentId { get; }

    /// <summary>The publisher's Peer ID.</summary>
    public PeerId Publisher { get; }

    /// <summary>Creation time, millisecond precision.</summary>
    public DateTimeOffset Created { get; }

    /// <summary>The Ed25519 signature.</summary>
    public ReadOnlySpan<byte> Signature => _encoded.AsSpan(_encoded.Length - NodeIdentity.SignatureLength);

    /// <summary>The canonical encoding, signature included.</summary>
    public ReadOnlySpan<byte> Encoded => _encoded;

    /// <summary>A copy of the canonical encoding.</summary>
    public byte[] Encode() => (byte[])_encoded.Clone();

    /// <summary>Creates and signs a manifest for an indexed file.</summary>
    public static Manifest Create(NodeIdentity publisher, MerkleTree tree, string name, DateTimeOffset created)
    {
        ArgumentNullException.ThrowIfNull(tree);
        return Create(publisher, name, tree.FileSize, tree.ChunkSize, tree.ContentId, created);
    }

    /// <summary>Creates and signs a manifest; throws <see cref="SecureMeshException"/> (InvalidInput) for out-of-range fields.</summary>
    public static Manifest Create(NodeIdentity publisher, string name, long size, int chunkSize, ContentId id, DateTimeOffset created)
    {
        ArgumentNullException.ThrowIfNull(publisher);
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(id);
        var nameBytes = Encoding.UTF8.GetByteCount(name);
        if (nameBytes is 0 or > MaxNameBytes)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"a manifest name is 1 to {MaxNameBytes} UTF-8 bytes, got {nameBytes}");
        }
        if (size < 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "file size is negative");
        }
        if (!ChunkLayout.IsValidChunkSize(chunkSize))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"chunk size {chunkSize} is not a power of two between 16 KiB and 16 MiB");
        }
        var unixMs = created.ToUnixTimeMilliseconds();
        var encoded = new byte[FixedLength + nameBytes];
        var span = encoded.AsSpan();
        span[0] = Version;
        BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)nameBytes);
        var pos = 3 + Encoding.UTF8.GetBytes(name, span[3..]);
        BinaryPrimitives.WriteUInt64BigEndian(span[pos..], (ulong)size);
        pos += 8;
        BinaryPrimitives.WriteUInt32BigEndian(span[pos..], (uint)chunkSize);
        pos += 4;
        id.Hash.CopyTo(span[pos..]);
        pos += ContentId.HashLength;
        publisher.PublicKey.CopyTo(span[pos..]);
        pos += PeerId.PublicKeyLength;
        BinaryPrimitives.WriteInt64BigEndian(span[pos..], unixMs);
        pos += 8;
        publisher.Sign(SignedMessage(span[..pos]), span[pos..]);
        return new Manifest(encoded, name, size, chunkSize, id, publisher.PeerId,
            DateTimeOffset.FromUnixTimeMilliseconds(unixMs));
    }

    /// <summary>Decodes a manifest; throws <see cref="SecureMeshException"/> (Protocol) for anything malformed. Does not check the signature: call <see cref="Verify"/>.</summary>
    public static Manifest Decode(ReadOnlySpan<byte> encoded)
    {
        if (encoded.Length < FixedLength + 1 || encoded.Length > MaxEncodedLength)
        {
            throw Bad($"length {encoded.Length} is outside {FixedLength + 1}..{MaxEncodedLength}");
        }
        if (encoded[0] != Version)
        {
            throw Bad($"unsupported version {encoded[0]}");
        }
        int nameBytes = BinaryPrimitives.ReadUInt16BigEndian(encoded[1..]);
        if (nameBytes is 0 or > MaxNameBytes)
        {
            throw Bad($"name length {nameBytes} is outside 1..{MaxNameBytes}");
        }
        if (encoded.Length != FixedLength + nameBytes)
        {
            throw Bad($"length {encoded.Length} does not match a {nameBytes}-byte name");
        }
        var nameSpan = encoded.Slice(3, nameBytes);
        if (!Utf8.IsValid(nameSpan))
        {
            throw Bad("name is not valid UTF-8");
        }
        var pos = 3 + nameBytes;
        var size = BinaryPrimitives.ReadUInt64BigEndian(encoded[pos..]);
        pos += 8;
        if (size > long.MaxValue)
        {
            throw Bad("size is too large");
        }
        var chunkSize = BinaryPrimitives.ReadUInt32BigEndian(encoded[pos..]);
        pos += 4;
        if (chunkSize > int.MaxValue || !ChunkLayout.IsValidChunkSize((int)chunkSize))
        {
            throw Bad($"chunk size {chunkSize} is not a power of two between 16 KiB and 16 MiB");
        }
        if (!ChunkLayout.IsWithinChunkCap((long)size, (int)chunkSize))
        {
            // Checked before anything is sized by it: no file this node could verify has this many chunks.
            throw Bad($"it claims {ChunkLayout.ChunkCount((long)size, (int)chunkSize)} chunks, more than the {ChunkLayout.MaxChunkCount} a file may have");
        }
        var id = ContentId.FromHash(encoded.Slice(pos, ContentId.HashLength));
        pos += ContentId.HashLength;
        var publisher = PeerId.FromPublicKey(encoded.Slice(pos, PeerId.PublicKeyLength));
        pos += PeerId.PublicKeyLength;
        var unixMs = BinaryPrimitives.ReadInt64BigEndian(encoded[pos..]);
        if (unixMs is < MinUnixMs or > MaxUnixMs)
        {
            throw Bad("creation time is out of range");
        }
        return new Manifest(encoded.ToArray(), Encoding.UTF8.GetString(nameSpan), (long)size, (int)chunkSize, id, publisher,
            DateTimeOffset.FromUnixTimeMilliseconds(unixMs));
    }

    /// <summary>True when the signature is the publisher's over this exact encoding and the fields are in range.</summary>
    public bool Verify()
    {
        if (Size < 0 || !ChunkLayout.IsValidChunkSize(ChunkSize) || !ChunkLayout.IsWithinChunkCap(Size, ChunkSize) || _encoded.Length > MaxEncodedLength)
        {
            return false;
        }
        var body = _encoded.AsSpan(0, _encoded.Length - NodeIdentity.SignatureLength);
        return NodeIdentity.Verify(Publisher.PublicKey, SignedMessage(body), Signature);
    }

    /// <summary>True when the manifest verifies and was published by <paramref name="publisher"/>.</summary>
    public bool VerifyFrom(PeerId publisher) => publisher is not null && Publisher.Equals(publisher) && Verify();

    /// <inheritdoc/>
    public override string ToString() => $"Manifest({ContentId}, {Size} bytes, by {Publisher})";

    private static byte[] SignedMessage(ReadOnlySpan<byte> body)
    {
        var message = new byte[Domain.Length + body.Length];
        Domain.CopyTo(message);
        body.CopyTo(message.AsSpan(Domain.Length));
        return message;
    }

    private static SecureMeshException Bad(string reason) => new(SecureMeshErrorKind.Protocol, $"invalid manifest: {reason}");
}
