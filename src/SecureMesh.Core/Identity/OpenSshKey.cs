using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace SecureMesh.Core.Identity;

/// <summary>
/// The <c>openssh-key-v1</c> private key format (OpenSSH PROTOCOL.key), Ed25519 and unencrypted only.
/// The reader checks every length before slicing and throws only <see cref="SecureMeshException"/>.
/// </summary>
internal static class OpenSshKey
{
    public const string PemLabel = "OPENSSH PRIVATE KEY";
    public const string Ed25519KeyType = "ssh-ed25519";
    private static readonly byte[] AuthMagic = "openssh-key-v1\0"u8.ToArray();
    private const int BlockSize = 8; // cipher "none"

    /// <summary>Encodes the binary blob (to be wrapped in PEM armour) for an Ed25519 identity.</summary>
    public static byte[] Encode(NodeIdentity identity, string comment)
    {
        var keyType = Encoding.ASCII.GetBytes(Ed25519KeyType);
        var commentBytes = Encoding.UTF8.GetBytes(comment);
        var pub = identity.PublicKey;
        var publicBlob = Concat(SshString(keyType), SshString(pub));

        // Private section: checkint, checkint, keytype, pub, seed||pub, comment, padding 1,2,3…
        var sectionLength = 8 + (4 + keyType.Length) + (4 + pub.Length) + (4 + 64) + (4 + commentBytes.Length);
        var padding = (BlockSize - (sectionLength % BlockSize)) % BlockSize;
        var section = new byte[sectionLength + padding];
        try
        {
            var span = section.AsSpan();
            RandomNumberGenerator.Fill(span[..4]);
            span[..4].CopyTo(span[4..8]);
            var offset = 8;
            offset += WriteString(span[offset..], keyType);
            offset += WriteString(span[offset..], pub);
            BinaryPrimitives.WriteUInt32BigEndian(span[offset..], 64);
            offset += 4;
            identity.ExportSeed(span.Slice(offset, NodeIdentity.SeedLength));
            pub.CopyTo(span[(offset + 32)..]);
            offset += 64;
            offset += WriteString(span[offset..], commentBytes);
            for (var i = 0; i < padding; i++)
            {
                span[offset + i] = (byte)(i + 1);
            }

            var none = SshString("none"u8);
            var total = AuthMagic.Length + none.Length + none.Length + 4 + 4 + (4 + publicBlob.Length) + (4 + section.Length);
            var blob = new byte[total];
            var o = 0;
            AuthMagic.CopyTo(blob, o);
            o += AuthMagic.Length;
            none.CopyTo(blob, o);
            o += none.Length;
            none.CopyTo(blob, o);
            o += none.Length;
            o += WriteString(blob.AsSpan(o), []); // kdf options
            BinaryPrimitives.WriteUInt32BigEndian(blob.AsSpan(o), 1); // number of keys
            o += 4;
            o += WriteString(blob.AsSpan(o), publicBlob);
            WriteString(blob.AsSpan(o), section);
            return blob;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(section);
        }
    }

    /// <summary>Decodes the binary blob; the caller wipes <paramref name="blob"/>.</summary>
    public static NodeIdentity Decode(ReadOnlySpan<byte> blob)
    {
        var reader = new SshReader(blob);
        if (!blob.StartsWith(AuthMagic))
        {
            throw Malformed("not an openssh-key-v1 key");
        }
        reader.Skip(AuthMagic.Length);
        var cipher = reader.ReadString();
        var kdf = reader.ReadString();
        reader.ReadString(); // kdf options
        if (reader.ReadUInt32() != 1)
        {
            throw Malformed("expected exactly one key");
        }
        var publicReader = new SshReader(reader.ReadString());
        var keyType = publicReader.ReadString();
        if (!keyType.SequenceEqual("ssh-ed25519"u8))
        {
            throw KeyFormats.Unsupported(DescribeKeyType(keyType));
        }
        var publicKey = publicReader.ReadString();
        if (publicKey.Length != PeerId.PublicKeyLength || !publicReader.AtEnd)
        {
            throw Malformed("bad Ed25519 public key");
        }
        if (!cipher.SequenceEqual("none"u8) || !kdf.SequenceEqual("none"u8))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                "encrypted OpenSSH keys are not supported; remove the passphrase with ssh-keygen -p first");
        }
        var section = new SshReader(reader.ReadString());
        if (!reader.AtEnd)
        {
            throw Malformed("trailing data after the private key");
        }
        if (section.ReadUInt32() != section.ReadUInt32())
        {
            throw Malformed("check bytes differ");
        }
        if (!section.ReadString().SequenceEqual("ssh-ed25519"u8))
        {
            throw Malformed("private and public key types differ");
        }
        if (!section.ReadString().SequenceEqual(publicKey))
        {
            throw Malformed("private and public keys differ");
        }
        var privateKey = section.ReadString();
        if (privateKey.Length != 64 || !privateKey[32..].SequenceEqual(publicKey))
        {
            throw Malformed("bad Ed25519 private key");
        }
        section.ReadString(); // comment
        var padding = section.Remaining;
        if (padding.Length >= BlockSize)
        {
            throw Malformed("bad padding");
        }
        for (var i = 0; i < padding.Length; i++)
        {
            if (padding[i] != i + 1)
            {
                throw Malformed("bad padding");
            }
        }
        var identity = NodeIdentity.FromSeed(privateKey[..32]);
        if (!identity.PublicKey.AsSpan().SequenceEqual(publicKey))
        {
            identity.Dispose();
            throw Malformed("the private key does not match its public key");
        }
        return identity;
    }

    private static string DescribeKeyType(ReadOnlySpan<byte> keyType)
    {
        var text = Encoding.ASCII.GetString(keyType);
        return text switch
        {
            "ssh-rsa" => "RSA",
            "ssh-dss" => "DSA",
            _ when text.StartsWith("ecdsa-sha2-", StringComparison.Ordinal) => "ECDSA",
            _ when text.StartsWith("sk-", StringComparison.Ordinal) => "a security-key (FIDO) key",
            "ssh-ed448" => "Ed448",
            _ => "an unknown key type",
        };
    }

    private static SecureMeshException Malformed(string reason) =>
        new(SecureMeshErrorKind.InvalidInput, $"malformed OpenSSH private key: {reason} (truncated or damaged?)");

    private static byte[] SshString(ReadOnlySpan<byte> value)
    {
        var result = new byte[4 + value.Length];
        WriteString(result, value);
        return result;
    }

    private static int WriteString(Span<byte> destination, ReadOnlySpan<byte> value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)value.Length);
        value.CopyTo(destination[4..]);
        return 4 + value.Length;
    }

    private static byte[] Concat(byte[] a, byte[] b) => [.. a, .. b];

    private ref struct SshReader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _data = data;

        public readonly bool AtEnd => _data.IsEmpty;

        public readonly ReadOnlySpan<byte> Remaining => _data;

        public void Skip(int count)
        {
            if (_data.Length < count)
            {
                throw Malformed("truncated");
            }
            _data = _data[count..];
        }

        public uint ReadUInt32()
        {
            if (_data.Length < 4)
            {
                throw Malformed("truncated");
            }
            var value = BinaryPrimitives.ReadUInt32BigEndian(_data);
            _data = _data[4..];
            return value;
        }

        public ReadOnlySpan<byte> ReadString()
        {
            var length = ReadUInt32();
            if (length > (uint)_data.Length)
            {
                throw Malformed("truncated");
            }
            var value = _data[..(int)length];
            _data = _data[(int)length..];
            return value;
        }
    }
}
