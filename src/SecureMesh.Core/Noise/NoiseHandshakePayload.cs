using System.Text;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;

namespace SecureMesh.Core.Noise;

/// <summary>
/// The libp2p <c>NoiseHandshakePayload</c> protobuf:
/// <code>
/// message NoiseExtensions { repeated bytes webtransport_certhashes = 1; repeated string stream_muxers = 2; }
/// message NoiseHandshakePayload { bytes identity_key = 1; bytes identity_sig = 2; NoiseExtensions extensions = 4; }
/// </code>
/// </summary>
internal sealed class NoiseHandshakePayload
{
    /// <summary>The prefix the identity key signs, before the static Noise key (libp2p noise spec).</summary>
    public static ReadOnlySpan<byte> SignaturePrefix => "noise-libp2p-static-key:"u8;

    /// <summary>Caps for what we accept from a peer: a handshake message is at most 64 KiB anyway.</summary>
    public const int MaxProtocols = 32;
    public const int MaxProtocolLength = 256;
    public const int MaxCertHashes = 16;

    public byte[] IdentityKey { get; init; } = [];

    public byte[] IdentitySignature { get; init; } = [];

    public IReadOnlyList<string> StreamMuxers { get; init; } = [];

    public IReadOnlyList<byte[]> WebTransportCertHashes { get; init; } = [];

    /// <summary>Builds the bytes the identity key signs.</summary>
    public static byte[] SignedData(ReadOnlySpan<byte> staticPublicKey)
    {
        var data = new byte[SignaturePrefix.Length + staticPublicKey.Length];
        SignaturePrefix.CopyTo(data);
        staticPublicKey.CopyTo(data.AsSpan(SignaturePrefix.Length));
        return data;
    }

    /// <summary>Creates our payload: identity key, its signature over the static key, and our protocols.</summary>
    public static NoiseHandshakePayload Create(NodeIdentity identity, ReadOnlySpan<byte> staticPublicKey, IReadOnlyList<string> protocols) => new()
    {
        IdentityKey = PeerId.EncodeProtobufPublicKey(identity.PublicKey),
        IdentitySignature = identity.Sign(SignedData(staticPublicKey)),
        StreamMuxers = protocols,
    };

    public byte[] Encode()
    {
        using var extensions = new MemoryStream();
        foreach (var hash in WebTransportCertHashes)
        {
            WriteBytesField(extensions, 1, hash);
        }
        foreach (var muxer in StreamMuxers)
        {
            WriteBytesField(extensions, 2, Encoding.UTF8.GetBytes(muxer));
        }
        using var message = new MemoryStream();
        WriteBytesField(message, 1, IdentityKey);
        WriteBytesField(message, 2, IdentitySignature);
        if (extensions.Length > 0)
        {
            WriteBytesField(message, 4, extensions.ToArray());
        }
        return message.ToArray();
    }

    /// <summary>Parses a payload from a peer; throws only <see cref="SecureMeshException"/> (Protocol) on bad input.</summary>
    public static NoiseHandshakePayload Decode(ReadOnlySpan<byte> data)
    {
        var reader = new ProtobufReader(data);
        byte[]? identityKey = null;
        byte[]? signature = null;
        var muxers = new List<string>();
        var hashes = new List<byte[]>();
        while (reader.TryReadTag(out var field, out var wireType))
        {
            switch (field)
            {
                case 1 when wireType == ProtobufReader.WireTypeLengthDelimited:
                    identityKey = reader.ReadBytes().ToArray();
                    break;
                case 2 when wireType == ProtobufReader.WireTypeLengthDelimited:
                    signature = reader.ReadBytes().ToArray();
                    break;
                case 4 when wireType == ProtobufReader.WireTypeLengthDelimited:
                    // Repeated occurrences of an embedded message merge, as protobuf says.
                    DecodeExtensions(reader.ReadBytes(), muxers, hashes);
                    break;
                default:
                    reader.SkipField(wireType);
                    break;
            }
        }
        if (identityKey is null || signature is null)
        {
            throw ProtobufReader.Malformed("handshake payload lacks the identity key or signature");
        }
        return new NoiseHandshakePayload
        {
            IdentityKey = identityKey,
            IdentitySignature = signature,
            StreamMuxers = muxers,
            WebTransportCertHashes = hashes,
        };
    }

    private static void DecodeExtensions(ReadOnlySpan<byte> data, List<string> muxers, List<byte[]> hashes)
    {
        var reader = new ProtobufReader(data);
        while (reader.TryReadTag(out var field, out var wireType))
        {
            switch (field)
            {
                case 1 when wireType == ProtobufReader.WireTypeLengthDelimited:
                    var hash = reader.ReadBytes();
                    if (hashes.Count >= MaxCertHashes)
                    {
                        throw ProtobufReader.Malformed("too many certificate hashes in the handshake payload");
                    }
                    hashes.Add(hash.ToArray());
                    break;
                case 2 when wireType == ProtobufReader.WireTypeLengthDelimited:
                    var name = reader.ReadBytes();
                    if (muxers.Count >= MaxProtocols || name.Length > MaxProtocolLength)
                    {
                        throw ProtobufReader.Malformed("too many or too long protocol names in the handshake payload");
                    }
                    muxers.Add(ProtobufReader.DecodeUtf8(name));
                    break;
                default:
                    reader.SkipField(wireType);
                    break;
            }
        }
    }

    private static void WriteBytesField(MemoryStream stream, int field, ReadOnlySpan<byte> value)
    {
        WriteVarint(stream, ((ulong)field << 3) | ProtobufReader.WireTypeLengthDelimited);
        WriteVarint(stream, (ulong)value.Length);
        stream.Write(value);
    }

    private static void WriteVarint(MemoryStream stream, ulong value)
    {
        Span<byte> buffer = stackalloc byte[Varint.MaxLength64];
        stream.Write(buffer[..Varint.Write(buffer, value)]);
    }
}
