using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Security;

namespace SecureMesh.Core.Identity;

/// <summary>Exports the identity as OpenSSH or PKCS#8 and imports Ed25519 keys in either form.</summary>
public static class KeyFormats
{
    private const string Pkcs8Label = "PRIVATE KEY";
    private const int MaxImportLength = 64 * 1024;

    // RFC 8410 OneAsymmetricKey v1 for Ed25519: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }.
    private static readonly byte[] Pkcs8Ed25519Prefix =
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

    /// <summary>An unencrypted OpenSSH (openssh-key-v1) private key that ssh-keygen reads.</summary>
    public static string ExportOpenSsh(NodeIdentity identity, string comment = "securemesh")
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(comment);
        var blob = OpenSshKey.Encode(identity, comment);
        try
        {
            // OpenSSH wraps its base64 at 70 columns.
            var base64 = Convert.ToBase64String(blob);
            var sb = new StringBuilder();
            sb.Append("-----BEGIN ").Append(OpenSshKey.PemLabel).Append("-----\n");
            for (var i = 0; i < base64.Length; i += 70)
            {
                sb.Append(base64.AsSpan(i, Math.Min(70, base64.Length - i))).Append('\n');
            }
            sb.Append("-----END ").Append(OpenSshKey.PemLabel).Append("-----\n");
            return sb.ToString();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(blob);
        }
    }

    /// <summary>An unencrypted PKCS#8 PEM private key (RFC 8410), as <c>openssl genpkey -algorithm ed25519</c> writes it.</summary>
    public static string ExportPkcs8Pem(NodeIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        var der = new byte[Pkcs8Ed25519Prefix.Length + NodeIdentity.SeedLength];
        try
        {
            Pkcs8Ed25519Prefix.CopyTo(der, 0);
            identity.ExportSeed(der.AsSpan(Pkcs8Ed25519Prefix.Length));
            return PemEncoding.WriteString(Pkcs8Label, der) + "\n";
        }
        finally
        {
            CryptographicOperations.ZeroMemory(der);
        }
    }

    /// <summary>Imports an unencrypted Ed25519 private key in OpenSSH or PKCS#8 PEM form.</summary>
    public static NodeIdentity Import(ReadOnlySpan<byte> fileContents)
    {
        if (fileContents.IsEmpty)
        {
            throw Invalid("the key file is empty");
        }
        if (fileContents.Length > MaxImportLength)
        {
            throw Invalid("the file is too large to be a private key");
        }
        // A char[] rather than a string, so the armoured secret can be wiped afterwards.
        char[] chars;
        try
        {
            chars = new UTF8Encoding(false, throwOnInvalidBytes: true).GetChars(fileContents.ToArray());
        }
        catch (DecoderFallbackException)
        {
            throw Invalid("not a text key file; expected an OpenSSH or PKCS#8 PEM private key");
        }
        try
        {
            return ImportText(chars);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(chars.AsSpan()));
        }
    }

    private static NodeIdentity ImportText(ReadOnlySpan<char> text)
    {
        var label = FindLabel(text);
        var trimmed = text.TrimStart();
        switch (label)
        {
            case OpenSshKey.PemLabel:
                return WithPemBody(text, label, OpenSshKey.Decode);
            case Pkcs8Label:
                return WithPemBody(text, label, ImportPkcs8);
            case "ENCRYPTED PRIVATE KEY":
                throw Invalid("encrypted PKCS#8 keys are not supported; decrypt it first with 'openssl pkey -in FILE -out PLAIN'");
            case "RSA PRIVATE KEY":
                throw Unsupported("RSA");
            case "EC PRIVATE KEY":
                throw Unsupported("ECDSA");
            case "DSA PRIVATE KEY":
                throw Unsupported("DSA");
            case "PUBLIC KEY" or "SSH2 PUBLIC KEY":
                throw Invalid("this is a public key; importing needs the private key file");
            case null when trimmed.StartsWith("ssh-", StringComparison.Ordinal) || trimmed.StartsWith("ecdsa-", StringComparison.Ordinal):
                throw Invalid("this is an OpenSSH public key; importing needs the private key file (without .pub)");
            case null:
                throw Invalid("unrecognised key file; expected an OpenSSH or PKCS#8 PEM private key");
            default:
                throw Invalid("unsupported PEM block; expected an OpenSSH or PKCS#8 private key");
        }
    }

    internal static SecureMeshException Unsupported(string found) =>
        new(SecureMeshErrorKind.InvalidInput, $"unsupported key type: only Ed25519 keys can be imported (found {found})");

    private static SecureMeshException Invalid(string message) => new(SecureMeshErrorKind.InvalidInput, message);

    /// <summary>The label of the first <c>-----BEGIN X-----</c> line, or null.</summary>
    private static string? FindLabel(ReadOnlySpan<char> text)
    {
        const string begin = "-----BEGIN ";
        var start = text.IndexOf(begin, StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }
        var rest = text[(start + begin.Length)..];
        var end = rest.IndexOf("-----", StringComparison.Ordinal);
        var newline = rest.IndexOf('\n');
        if (end < 0 || (newline >= 0 && newline < end) || end > 64)
        {
            return null;
        }
        return rest[..end].ToString();
    }

    private delegate NodeIdentity BodyDecoder(ReadOnlySpan<byte> body);

    private static NodeIdentity WithPemBody(ReadOnlySpan<char> text, string label, BodyDecoder decode)
    {
        if (!PemEncoding.TryFind(text, out var fields) || !text[fields.Label].SequenceEqual(label))
        {
            throw Invalid($"malformed {Describe(label)}: broken PEM armour or base64 (truncated or damaged?)");
        }
        var body = new byte[fields.DecodedDataLength];
        try
        {
            if (!Convert.TryFromBase64Chars(text[fields.Base64Data], body, out var written) || written != body.Length)
            {
                throw Invalid($"malformed {Describe(label)}: bad base64");
            }
            return decode(body);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(body);
        }
    }

    private static string Describe(string label) => label == OpenSshKey.PemLabel ? "OpenSSH private key" : "PKCS#8 private key";

    private static NodeIdentity ImportPkcs8(ReadOnlySpan<byte> der)
    {
        AsymmetricKeyParameter key;
        try
        {
            key = PrivateKeyFactory.CreateKey(der.ToArray());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // BouncyCastle throws many exception types on malformed input; none of their messages are shown.
            throw Invalid("malformed PKCS#8 private key: not a valid or supported DER structure (truncated or damaged?)");
        }
        switch (key)
        {
            case Ed25519PrivateKeyParameters ed:
                var seed = ed.GetEncoded();
                try
                {
                    return NodeIdentity.FromSeed(seed);
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(seed);
                }
            case RsaKeyParameters:
                throw Unsupported("RSA");
            case ECPrivateKeyParameters:
                throw Unsupported("ECDSA");
            case DsaPrivateKeyParameters:
                throw Unsupported("DSA");
            case Ed448PrivateKeyParameters:
                throw Unsupported("Ed448");
            case X25519PrivateKeyParameters:
                throw Unsupported("X25519");
            case X448PrivateKeyParameters:
                throw Unsupported("X448");
            default:
                throw Unsupported("an unknown key type");
        }
    }
}
