using SecureMesh.Core.Content;

namespace SecureMesh.Core.Wire;

// The application protocol, version 1: the whole schema is in this file.
//
// Messages travel inside the secure channel, which delivers whole messages, so there is no framing here.
// Every message:   u8 type | varint requestId (u32) | body
// varint  = unsigned LEB128, minimal length (u32 in at most 5 bytes, u64 in at most 10)
// bytes   = varint length | length bytes
// string  = bytes holding strict UTF-8
// cid     = the 32 raw bytes of a content ID's root
//
// 0x01 Hello            varint version | varint count(≤ 32) | count × string capability(≤ 64) | varint maxMessageSize
// 0x02 SearchRequest    string query(≤ 256) | varint limit(1..1000)
// 0x03 SearchResponse   varint count(≤ 1000) | count × (cid | string name(≤ 255) | varint size(≤ 2^63-1))
// 0x04 ManifestRequest  cid
// 0x05 ManifestResponse bytes manifest(≤ Manifest.MaxEncodedLength)
// 0x06 HaveRequest      cid
// 0x07 HaveResponse     u8 kind(0 bitfield, 1 all) | varint chunkCount(≤ 2^18, ChunkLayout.MaxChunkCount) | kind 0: bytes bitfield(exactly ⌈chunkCount/8⌉)
// 0x08 ChunkRequest     cid | varint index(≤ 2^63-1)
// 0x09 ChunkResponse    varint index(≤ 2^63-1) | bytes data(≤ 16 MiB) | varint count(≤ 64) | count × 32 proof hash
// 0x0A Error            varint code(WireErrorCode) | string message(≤ 512)
// 0x0B Cancel           (empty body) cancels the request with this id
// 0x0C Refused          (empty body, request id 0) sent once, right after the handshake or when a session is cut,
//                       by a node that has blocked this peer; it then closes. It says "refused" and nothing more.
//
// Every length and count is checked against its cap and against the bytes left before anything is allocated;
// a message with bytes left over after its body is rejected.

/// <summary>Protocol constants and caps.</summary>
public static class WireLimits
{
    /// <summary>The protocol version this code speaks.</summary>
    public const uint ProtocolVersion = 1;

    /// <summary>Largest message accepted by default: the largest chunk plus room for the header and proof.</summary>
    public const int DefaultMaxMessageSize = ChunkLayout.MaxChunkSize + (64 * 1024);

    /// <summary>
    /// The most a ChunkResponse adds to its chunk's bytes: type, request id (5), index (10), data length (5), proof
    /// count (1) and the longest proof. A chunk size is only usable when chunk plus this fits in one message.
    /// </summary>
    public const int MaxChunkResponseOverhead = 1 + 5 + 10 + 5 + 1 + (MaxProofHashes * 32);

    /// <summary>The largest valid chunk size whose ChunkResponse fits in a <paramref name="maxMessageSize"/>-byte message; 0 when none does.</summary>
    public static int LargestChunkFor(int maxMessageSize)
    {
        for (var size = ChunkLayout.MaxChunkSize; size >= ChunkLayout.MinChunkSize; size /= 2)
        {
            if ((long)size + MaxChunkResponseOverhead <= maxMessageSize)
            {
                return size;
            }
        }
        return 0;
    }

    /// <summary>Smallest max message size a peer may announce.</summary>
    public const int MinAnnouncedMessageSize = 64 * 1024;

    /// <summary>Largest max message size a peer may announce.</summary>
    public const int MaxAnnouncedMessageSize = 256 * 1024 * 1024;

    /// <summary>Most capabilities in a Hello.</summary>
    public const int MaxCapabilities = 32;

    /// <summary>Longest capability name, UTF-8 bytes.</summary>
    public const int MaxCapabilityBytes = 64;

    /// <summary>Longest search query, UTF-8 bytes.</summary>
    public const int MaxQueryBytes = 256;

    /// <summary>Most search results in one response.</summary>
    public const int MaxSearchResults = 1000;

    /// <summary>Longest name in a search result, UTF-8 bytes.</summary>
    public const int MaxNameBytes = Manifest.MaxNameBytes;

    /// <summary>Longest error message, UTF-8 bytes.</summary>
    public const int MaxErrorMessageBytes = 512;

    /// <summary>Most sibling hashes in a chunk proof (a tree of 2^64 leaves has 64 levels).</summary>
    public const int MaxProofHashes = 64;

    /// <summary>Most chunks a Have bitfield may describe: the most a file may have (<see cref="ChunkLayout.MaxChunkCount"/>).</summary>
    public const long MaxHaveChunks = ChunkLayout.MaxChunkCount;
}

/// <summary>Message type bytes.</summary>
public enum WireMessageType : byte
{
    /// <summary>Version and capabilities, sent first by both sides.</summary>
    Hello = 0x01,
    /// <summary>Search the peer's catalog.</summary>
    SearchRequest = 0x02,
    /// <summary>Search results.</summary>
    SearchResponse = 0x03,
    /// <summary>Ask for a manifest.</summary>
    ManifestRequest = 0x04,
    /// <summary>A signed manifest.</summary>
    ManifestResponse = 0x05,
    /// <summary>Ask which chunks the peer has.</summary>
    HaveRequest = 0x06,
    /// <summary>Which chunks the peer has.</summary>
    HaveResponse = 0x07,
    /// <summary>Ask for one chunk.</summary>
    ChunkRequest = 0x08,
    /// <summary>One chunk with its proof.</summary>
    ChunkResponse = 0x09,
    /// <summary>A request failed.</summary>
    Error = 0x0A,
    /// <summary>Cancel an outstanding request.</summary>
    Cancel = 0x0B,
    /// <summary>This node refuses the peer (it is blocked here); the connection closes next.</summary>
    Refused = 0x0C,
}

/// <summary>Why a request failed.</summary>
public enum WireErrorCode : byte
{
    /// <summary>The request was malformed or not allowed in this state.</summary>
    BadRequest = 1,
    /// <summary>The peer is not allowed to ask this.</summary>
    Unauthorized = 2,
    /// <summary>The content or chunk is not here.</summary>
    NotFound = 3,
    /// <summary>Too many requests; try later or elsewhere.</summary>
    Busy = 4,
    /// <summary>The content is blocked.</summary>
    Blocked = 5,
    /// <summary>The serving side failed.</summary>
    Internal = 6,
    /// <summary>The protocol version is not supported.</summary>
    UnsupportedVersion = 7,
    /// <summary>The content changed on disk and is being re-indexed.</summary>
    Changed = 8,
}

/// <summary>A protocol message; <see cref="RequestId"/> pairs a response with its request.</summary>
public abstract record WireMessage(uint RequestId)
{
    /// <summary>The type byte.</summary>
    public abstract WireMessageType Type { get; }
}

/// <summary>Version, capabilities and the largest message this side accepts.</summary>
public sealed record Hello(uint RequestId, uint Version, IReadOnlyList<string> Capabilities, int MaxMessageSize) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.Hello;
}

/// <summary>Search the peer's catalog for <see cref="Query"/>, at most <see cref="Limit"/> results.</summary>
public sealed record SearchRequest(uint RequestId, string Query, int Limit) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.SearchRequest;
}

/// <summary>One search hit.</summary>
public sealed record SearchResult(ContentId ContentId, string Name, long Size);

/// <summary>Search results.</summary>
public sealed record SearchResponse(uint RequestId, IReadOnlyList<SearchResult> Results) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.SearchResponse;
}

/// <summary>Ask for the manifest of <see cref="ContentId"/>.</summary>
public sealed record ManifestRequest(uint RequestId, ContentId ContentId) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.ManifestRequest;
}

/// <summary>An encoded manifest; decode with <see cref="Manifest.Decode"/> and check it with <see cref="Manifest.Verify"/>.</summary>
public sealed record ManifestResponse(uint RequestId, ReadOnlyMemory<byte> Manifest) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.ManifestResponse;
}

/// <summary>Ask which chunks of <see cref="ContentId"/> the peer has.</summary>
public sealed record HaveRequest(uint RequestId, ContentId ContentId) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.HaveRequest;
}

/// <summary>Which chunks the peer has: all of them, or those set in <see cref="Bitfield"/> (see <see cref="ChunkBitfield"/>).</summary>
public sealed record HaveResponse(uint RequestId, long ChunkCount, bool All, ReadOnlyMemory<byte> Bitfield) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.HaveResponse;

    /// <summary>A response saying every chunk is present.</summary>
    public static HaveResponse ForAll(uint requestId, long chunkCount) => new(requestId, chunkCount, true, ReadOnlyMemory<byte>.Empty);

    /// <summary>A response carrying <paramref name="bitfield"/>.</summary>
    public static HaveResponse ForBitfield(uint requestId, ChunkBitfield bitfield)
    {
        ArgumentNullException.ThrowIfNull(bitfield);
        return new(requestId, bitfield.ChunkCount, false, bitfield.Bytes.ToArray());
    }

    /// <summary>The chunks present as a <see cref="ChunkBitfield"/>.</summary>
    public ChunkBitfield ToBitfield()
    {
        if (All)
        {
            return ChunkBitfield.All(ChunkCount);
        }
        return ChunkBitfield.TryFromBytes(ChunkCount, Bitfield.Span, out var field)
            ? field
            : throw new SecureMeshException(SecureMeshErrorKind.Protocol, "invalid have bitfield");
    }
}

/// <summary>Ask for chunk <see cref="Index"/> of <see cref="ContentId"/>.</summary>
public sealed record ChunkRequest(uint RequestId, ContentId ContentId, long Index) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.ChunkRequest;
}

/// <summary>Chunk <see cref="Index"/> and its proof; check it with <see cref="ContentVerifier.VerifyChunk(ContentId, long, int, long, ReadOnlySpan{byte}, MerkleProof)"/> before use.</summary>
public sealed record ChunkResponse(uint RequestId, long Index, ReadOnlyMemory<byte> Data, MerkleProof Proof) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.ChunkResponse;
}

/// <summary>The request <see cref="WireMessage.RequestId"/> failed.</summary>
public sealed record ErrorMessage(uint RequestId, WireErrorCode Code, string Message) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.Error;
}

/// <summary>Cancels the outstanding request <see cref="WireMessage.RequestId"/>.</summary>
public sealed record CancelRequest(uint RequestId) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.Cancel;
}

/// <summary>The sender refuses this peer and closes; nothing more is said (the reason stays with the sender).</summary>
public sealed record RefusedMessage(uint RequestId = 0) : WireMessage(RequestId)
{
    /// <inheritdoc/>
    public override WireMessageType Type => WireMessageType.Refused;
}
