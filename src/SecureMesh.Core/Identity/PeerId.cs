using System.Diagnostics.CodeAnalysis;

namespace SecureMesh.Core.Identity;

/// <summary>
/// A libp2p Peer ID for an Ed25519 key: the identity multihash of the protobuf
/// <c>PublicKey{Type=Ed25519, Data=key}</c>, written in base58btc (<c>12D3KooW…</c>, 52 characters).
/// Only this form is accepted, so the public key can always be recovered from the ID.
/// </summary>
public sealed class PeerId : IEquatable<PeerId>
{
    /// <summary>Length of an Ed25519 public key.</summary>
    public const int PublicKeyLength = 32;

    /// <summary>Length of the text form.</summary>
    public const int TextLength = 52;

    // protobuf PublicKey: field 1 (KeyType, varint) = 1 (Ed25519); field 2 (bytes) of length 32.
    private static readonly byte[] ProtobufPrefix = [0x08, 0x01, 0x12, 0x20];

    // multihash: code 0x00 (identity), length 36.
    private static readonly byte[] MultihashPrefix = [0x00, 0x24];

    private readonly byte[] _publicKey;

    private PeerId(byte[] publicKey, string text)
    {
        _publicKey = publicKey;
        Text = text;
    }

    /// <summary>The Ed25519 public key this ID names.</summary>
    public ReadOnlySpan<byte> PublicKey => _publicKey;

    /// <summary>The base58btc text form.</summary>
    public string Text { get; }

    /// <summary>The libp2p protobuf encoding of the public key (36 bytes).</summary>
    public byte[] ProtobufPublicKey() => EncodeProtobufPublicKey(_publicKey);

    /// <summary>The multihash bytes of the ID (38 bytes).</summary>
    public byte[] ToBytes() => MultihashBytes(_publicKey);

    private static byte[] MultihashBytes(ReadOnlySpan<byte> publicKey)
    {
        var bytes = new byte[MultihashPrefix.Length + ProtobufPrefix.Length + PublicKeyLength];
        MultihashPrefix.CopyTo(bytes, 0);
        ProtobufPrefix.CopyTo(bytes, MultihashPrefix.Length);
        publicKey.CopyTo(bytes.AsSpan(MultihashPrefix.Length + ProtobufPrefix.Length));
        return bytes;
    }

    /// <summary>The short human fingerprint of this key.</summary>
    public string Fingerprint => Identity.Fingerprint.Of(_publicKey);

    /// <summary>Encodes an Ed25519 public key in the libp2p protobuf <c>PublicKey</c> message.</summary>
    public static byte[] EncodeProtobufPublicKey(ReadOnlySpan<byte> publicKey)
    {
        if (publicKey.Length != PublicKeyLength)
        {
            throw new ArgumentException("An Ed25519 public key is 32 bytes.", nameof(publicKey));
        }
        var bytes = new byte[ProtobufPrefix.Length + PublicKeyLength];
        ProtobufPrefix.CopyTo(bytes, 0);
        publicKey.CopyTo(bytes.AsSpan(ProtobufPrefix.Length));
        return bytes;
    }

    /// <summary>Reads a libp2p protobuf <c>PublicKey</c> holding an Ed25519 key; false for any other encoding.</summary>
    public static bool TryDecodeProtobufPublicKey(ReadOnlySpan<byte> encoded, [NotNullWhen(true)] out byte[]? publicKey)
    {
        publicKey = null;
        if (encoded.Length != ProtobufPrefix.Length + PublicKeyLength || !encoded[..ProtobufPrefix.Length].SequenceEqual(ProtobufPrefix))
        {
            return false;
        }
        publicKey = encoded[ProtobufPrefix.Length..].ToArray();
        return true;
    }

    /// <summary>The Peer ID of an Ed25519 public key.</summary>
    public static PeerId FromPublicKey(ReadOnlySpan<byte> publicKey)
    {
        if (publicKey.Length != PublicKeyLength)
        {
            throw new ArgumentException("An Ed25519 public key is 32 bytes.", nameof(publicKey));
        }
        return new PeerId(publicKey.ToArray(), Base58.Encode(MultihashBytes(publicKey)));
    }

    /// <summary>Parses the text form; throws <see cref="SecureMeshException"/> with a clear reason on anything else.</summary>
    public static PeerId Parse(string? text)
    {
        if (TryParse(text, out var id, out var error))
        {
            return id;
        }
        throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, error);
    }

    /// <summary>Parses the text form.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out PeerId? id) => TryParse(text, out id, out _);

    /// <summary>Parses the text form, giving the reason on failure.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out PeerId? id, out string error)
    {
        id = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "invalid Peer ID: empty";
            return false;
        }
        if (text.Length != TextLength)
        {
            error = $"invalid Peer ID {Describe(text)}: expected {TextLength} characters starting with 12D3KooW, got {text.Length}";
            return false;
        }
        if (!Base58.TryDecode(text, out var bytes))
        {
            error = $"invalid Peer ID {Describe(text)}: not base58btc";
            return false;
        }
        if (bytes.Length != MultihashPrefix.Length + ProtobufPrefix.Length + PublicKeyLength
            || !bytes.AsSpan(0, MultihashPrefix.Length).SequenceEqual(MultihashPrefix))
        {
            error = $"invalid Peer ID {Describe(text)}: not an identity multihash of an Ed25519 key";
            return false;
        }
        if (!TryDecodeProtobufPublicKey(bytes.AsSpan(MultihashPrefix.Length), out var key))
        {
            error = $"invalid Peer ID {Describe(text)}: not an Ed25519 key (only Ed25519 Peer IDs are supported)";
            return false;
        }
        id = new PeerId(key, text);
        error = string.Empty;
        return true;
    }

    private static string Describe(string? text)
    {
        if (text is null)
        {
            return "''";
        }
        // Never echo control characters or a huge string back to a terminal.
        var clean = new string([.. text.Take(60).Select(c => char.IsControl(c) ? '?' : c)]);
        return text.Length > 60 ? $"'{clean}…'" : $"'{clean}'";
    }

    /// <inheritdoc/>
    public bool Equals(PeerId? other) => other is not null && _publicKey.AsSpan().SequenceEqual(other._publicKey);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as PeerId);

    /// <inheritdoc/>
    public override int GetHashCode() => BitConverter.ToInt32(_publicKey, 0);

    /// <inheritdoc/>
    public override string ToString() => Text;

    /// <summary>Equality by key.</summary>
    public static bool operator ==(PeerId? a, PeerId? b) => a is null ? b is null : a.Equals(b);

    /// <summary>Inequality by key.</summary>
    public static bool operator !=(PeerId? a, PeerId? b) => !(a == b);
}
