using System.Buffers.Binary;
using System.Text;

namespace SecureMesh.Core.Backup;

/// <summary>A request on <c>/securemesh/backup/1.0.0</c>.</summary>
public enum BackupOp : byte
{
    /// <summary>Store a blob: ID (32) then the sealed bytes; the holder checks the ID is their BLAKE3.</summary>
    Put = 1,
    /// <summary>Fetch a blob: ID (32).</summary>
    Get = 2,
    /// <summary>List the owner's blobs after an ID (empty: from the start): up to <see cref="BackupWire.MaxListEntries"/> per answer.</summary>
    List = 3,
    /// <summary>Delete a blob: ID (32).</summary>
    Delete = 4,
    /// <summary>Prove a blob is held: ID (32), offset (4), length (4), nonce (32); the answer is <see cref="ProofChallenge.Answer"/>.</summary>
    Prove = 5,
    /// <summary>Replace the owner's root (the sealed catalog).</summary>
    PutRoot = 6,
    /// <summary>Fetch the owner's root.</summary>
    GetRoot = 7,
    /// <summary>The owner's quota and what it uses (8 + 8 bytes, big-endian).</summary>
    Usage = 8,
}

/// <summary>The first byte of an answer.</summary>
public enum BackupStatus : byte
{
    /// <summary>Done; the payload follows.</summary>
    Ok = 0,
    /// <summary>No such blob or root.</summary>
    NotFound = 1,
    /// <summary>The blob would take the owner past its quota.</summary>
    QuotaExceeded = 2,
    /// <summary>The peer has no offer here (or it was revoked).</summary>
    NotAllowed = 3,
    /// <summary>A malformed request.</summary>
    BadRequest = 4,
}

/// <summary>A parsed request; the spans point into the message.</summary>
public readonly record struct BackupRequest(BackupOp Op, ReadOnlyMemory<byte> Id, ReadOnlyMemory<byte> Data, int Offset, int Length, ReadOnlyMemory<byte> Nonce);

/// <summary>
/// The messages of <c>/securemesh/backup/1.0.0</c>: one request, one answer, in turn, each a length-prefixed message on
/// the stream (the cap is <see cref="MaxMessage"/>). Requests are <c>op (1) || fields</c>; answers
/// <c>status (1) || payload</c>, an error's payload a short UTF-8 reason. Every length is checked before use; a message
/// that does not parse is refused with BadRequest and the stream reset.
/// </summary>
public static class BackupWire
{
    /// <summary>The protocol ID.</summary>
    public const string ProtocolId = "/securemesh/backup/1.0.0";

    /// <summary>Largest message either side sends or accepts: the largest root plus a header.</summary>
    public const int MaxMessage = BackupCatalog.MaxSealedSize + 64;

    /// <summary>Largest blob a holder stores (a sealed chunk or a sealed trust-store export).</summary>
    public const int MaxBlob = TrustExport.MaxSealedSize;

    /// <summary>Most entries in one List answer.</summary>
    public const int MaxListEntries = 4096;

    /// <summary>Longest error text.</summary>
    public const int MaxErrorText = 256;

    /// <summary>Encodes a request with an ID and optional data.</summary>
    public static byte[] Request(BackupOp op, BlobId? id = null, ReadOnlySpan<byte> data = default)
    {
        var idLength = id is null ? 0 : BlobId.Length;
        var message = new byte[1 + idLength + data.Length];
        message[0] = (byte)op;
        id?.Bytes.CopyTo(message.AsSpan(1));
        data.CopyTo(message.AsSpan(1 + idLength));
        return message;
    }

    /// <summary>Encodes a Prove request.</summary>
    public static byte[] ProveRequest(BlobId id, ProofChallenge challenge)
    {
        ArgumentNullException.ThrowIfNull(challenge);
        var message = new byte[1 + BlobId.Length + 8 + ProofChallenge.HashLength];
        message[0] = (byte)BackupOp.Prove;
        id.Bytes.CopyTo(message.AsSpan(1));
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(1 + BlobId.Length), challenge.Offset);
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(5 + BlobId.Length), challenge.Length);
        challenge.Nonce.CopyTo(message.AsSpan(9 + BlobId.Length));
        return message;
    }

    /// <summary>Parses a request; false with the reason for anything malformed.</summary>
    public static bool TryParseRequest(ReadOnlyMemory<byte> message, out BackupRequest request, out string error)
    {
        request = default;
        error = "";
        var span = message.Span;
        if (span.IsEmpty)
        {
            error = "an empty request";
            return false;
        }
        var op = (BackupOp)span[0];
        var body = message[1..];
        switch (op)
        {
            case BackupOp.Put:
                if (body.Length < BlobId.Length + 1 || body.Length - BlobId.Length > MaxBlob)
                {
                    error = "a put of a size outside 1 byte to the blob cap";
                    return false;
                }
                request = new BackupRequest(op, body[..BlobId.Length], body[BlobId.Length..], 0, 0, default);
                return true;
            case BackupOp.Get or BackupOp.Delete:
                if (body.Length != BlobId.Length)
                {
                    error = "a blob ID is 32 bytes";
                    return false;
                }
                request = new BackupRequest(op, body, default, 0, 0, default);
                return true;
            case BackupOp.List:
                if (body.Length is not (0 or BlobId.Length))
                {
                    error = "a list starts after nothing or a 32-byte ID";
                    return false;
                }
                request = new BackupRequest(op, body, default, 0, 0, default);
                return true;
            case BackupOp.Prove:
                if (body.Length != BlobId.Length + 8 + ProofChallenge.HashLength)
                {
                    error = "a proof request is 72 bytes";
                    return false;
                }
                var offset = BinaryPrimitives.ReadInt32BigEndian(body.Span[BlobId.Length..]);
                var length = BinaryPrimitives.ReadInt32BigEndian(body.Span[(BlobId.Length + 4)..]);
                if (offset < 0 || length < 1 || length > ProofChallenge.MaxRange)
                {
                    error = "a proof range outside the blob or over the cap";
                    return false;
                }
                request = new BackupRequest(op, body[..BlobId.Length], default, offset, length, body[(BlobId.Length + 8)..]);
                return true;
            case BackupOp.PutRoot:
                if (body.Length is < 1 or > BackupCatalog.MaxSealedSize)
                {
                    error = "a root of a size outside 1 byte to the cap";
                    return false;
                }
                request = new BackupRequest(op, default, body, 0, 0, default);
                return true;
            case BackupOp.GetRoot or BackupOp.Usage:
                if (!body.IsEmpty)
                {
                    error = "this request has no body";
                    return false;
                }
                request = new BackupRequest(op, default, default, 0, 0, default);
                return true;
            default:
                error = $"an unknown request ({span[0]})";
                return false;
        }
    }

    /// <summary>An Ok answer with <paramref name="payload"/>.</summary>
    public static byte[] Ok(ReadOnlySpan<byte> payload = default)
    {
        var message = new byte[1 + payload.Length];
        payload.CopyTo(message.AsSpan(1));
        return message;
    }

    /// <summary>An error answer.</summary>
    public static byte[] Error(BackupStatus status, string reason)
    {
        var text = Encoding.UTF8.GetBytes(reason.Length > MaxErrorText / 4 * 4 ? reason[..(MaxErrorText / 4)] : reason);
        var length = Math.Min(text.Length, MaxErrorText);
        var message = new byte[1 + length];
        message[0] = (byte)status;
        text.AsSpan(0, length).CopyTo(message.AsSpan(1));
        return message;
    }

    /// <summary>
    /// The payload of an answer, or a <see cref="SecureMeshException"/>: NotFound, Unauthorized (no offer), Conflict
    /// (quota), Protocol (a malformed answer or BadRequest); the holder's reason is quoted as untrusted text.
    /// </summary>
    public static ReadOnlyMemory<byte> Payload(ReadOnlyMemory<byte> answer)
    {
        if (answer.IsEmpty)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "an empty answer from the holder");
        }
        var status = (BackupStatus)answer.Span[0];
        if (status == BackupStatus.Ok)
        {
            return answer[1..];
        }
        var text = answer.Length - 1 > MaxErrorText ? "" : UntrustedText.Clean(Encoding.UTF8.GetString(answer.Span[1..]));
        throw status switch
        {
            BackupStatus.NotFound => new SecureMeshException(SecureMeshErrorKind.NotFound, $"the holder does not have it: {text}"),
            BackupStatus.QuotaExceeded => new SecureMeshException(SecureMeshErrorKind.Conflict, $"the holder's quota is full: {text}"),
            BackupStatus.NotAllowed => new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"the holder refuses: {text}"),
            BackupStatus.BadRequest => new SecureMeshException(SecureMeshErrorKind.Protocol, $"the holder calls the request malformed: {text}"),
            _ => new SecureMeshException(SecureMeshErrorKind.Protocol, $"an unknown answer status {(byte)status} from the holder"),
        };
    }

    /// <summary>Encodes a List answer's payload.</summary>
    public static byte[] ListPayload(IReadOnlyList<(BlobId Id, long Size)> entries, bool more)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var payload = new byte[1 + (entries.Count * (BlobId.Length + 4))];
        payload[0] = more ? (byte)1 : (byte)0;
        for (var i = 0; i < entries.Count; i++)
        {
            var slot = payload.AsSpan(1 + (i * (BlobId.Length + 4)));
            entries[i].Id.Bytes.CopyTo(slot);
            BinaryPrimitives.WriteUInt32BigEndian(slot[BlobId.Length..], (uint)entries[i].Size);
        }
        return payload;
    }

    /// <summary>Parses a List answer's payload; Protocol exception when malformed.</summary>
    public static (List<(BlobId Id, long Size)> Entries, bool More) ParseList(ReadOnlySpan<byte> payload)
    {
        const int entry = BlobId.Length + 4;
        if (payload.IsEmpty || payload[0] > 1 || (payload.Length - 1) % entry != 0 || (payload.Length - 1) / entry > MaxListEntries)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "a malformed blob list from the holder");
        }
        var entries = new List<(BlobId, long)>((payload.Length - 1) / entry);
        for (var at = 1; at < payload.Length; at += entry)
        {
            entries.Add((BlobId.FromBytes(payload.Slice(at, BlobId.Length)), BinaryPrimitives.ReadUInt32BigEndian(payload[(at + BlobId.Length)..])));
        }
        return (entries, payload[0] == 1);
    }

    /// <summary>Encodes a Usage answer's payload.</summary>
    public static byte[] UsagePayload(long quota, long used)
    {
        var payload = new byte[16];
        BinaryPrimitives.WriteInt64BigEndian(payload, quota);
        BinaryPrimitives.WriteInt64BigEndian(payload.AsSpan(8), used);
        return payload;
    }

    /// <summary>Parses a Usage answer's payload.</summary>
    public static (long Quota, long Used) ParseUsage(ReadOnlySpan<byte> payload) => payload.Length == 16
        ? (BinaryPrimitives.ReadInt64BigEndian(payload), BinaryPrimitives.ReadInt64BigEndian(payload[8..]))
        : throw new SecureMeshException(SecureMeshErrorKind.Protocol, "a malformed usage answer from the holder");
}
