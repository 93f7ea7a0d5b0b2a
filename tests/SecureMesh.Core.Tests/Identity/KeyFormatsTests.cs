using System.Diagnostics;
using System.Text;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Identity;

public class KeyFormatsTests
{
    private const string SshKeygen = "/usr/bin/ssh-keygen";

    [Fact]
    public void The_ssh_keygen_fixture_imports_to_the_Peer_ID_libp2p_js_computes()
    {
        using var identity = KeyFormats.Import(TestFixtures.Bytes("ssh-ed25519"));
        var vector = TestFixtures.Vector("ssh-ed25519.pub");

        Assert.Equal(vector.PeerId, identity.PeerId.Text);
        Assert.Equal(vector.PublicKeyHex, Convert.ToHexStringLower(identity.PublicKey));
        Assert.Equal(SshPublicKey(File.ReadAllText(TestFixtures.Path("ssh-ed25519.pub"))), identity.PublicKey);
    }

    [Fact]
    public void The_openssl_fixture_imports_to_the_Peer_ID_libp2p_js_computes()
    {
        using var identity = KeyFormats.Import(TestFixtures.Bytes("pkcs8-ed25519.pem"));
        Assert.Equal(TestFixtures.Vector("pkcs8-ed25519.pub.pem").PeerId, identity.PeerId.Text);
    }

    [Fact]
    public void Pkcs8_export_is_byte_identical_to_openssl_output()
    {
        var fixture = File.ReadAllText(TestFixtures.Path("pkcs8-ed25519.pem"));
        using var identity = KeyFormats.Import(Encoding.UTF8.GetBytes(fixture));
        Assert.Equal(fixture, KeyFormats.ExportPkcs8Pem(identity));
    }

    [Fact]
    public void Pkcs8_export_then_import_round_trips()
    {
        using var identity = NodeIdentity.Generate();
        var pem = KeyFormats.ExportPkcs8Pem(identity);
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----\n", pem, StringComparison.Ordinal);
        Assert.EndsWith("-----END PRIVATE KEY-----\n", pem, StringComparison.Ordinal);
        using var back = KeyFormats.Import(Encoding.ASCII.GetBytes(pem));
        Assert.Equal(identity.PeerId, back.PeerId);
    }

    [Fact]
    public void OpenSsh_export_then_import_round_trips()
    {
        using var identity = NodeIdentity.Generate();
        var text = KeyFormats.ExportOpenSsh(identity, "round trip");
        Assert.StartsWith("-----BEGIN OPENSSH PRIVATE KEY-----\n", text, StringComparison.Ordinal);
        Assert.EndsWith("-----END OPENSSH PRIVATE KEY-----\n", text, StringComparison.Ordinal);
        Assert.All(text.Split('\n'), line => Assert.True(line.Length <= 70));
        using var back = KeyFormats.Import(Encoding.ASCII.GetBytes(text));
        Assert.Equal(identity.PeerId, back.PeerId);
    }

    [Fact]
    public void OpenSsh_export_matches_ssh_keygen_output_except_the_random_check_bytes()
    {
        var fixture = File.ReadAllText(TestFixtures.Path("ssh-ed25519"));
        using var identity = KeyFormats.Import(Encoding.ASCII.GetBytes(fixture));
        var ours = PemBody(KeyFormats.ExportOpenSsh(identity, "securemesh-test-fixture"));
        var theirs = PemBody(fixture);

        // magic(15) + "none"(8) + "none"(8) + kdf options(4) + key count(4) + public blob(4+51) + section length(4)
        const int checkBytes = 98;
        ours.AsSpan(checkBytes, 8).Clear();
        theirs.AsSpan(checkBytes, 8).Clear();
        Assert.Equal(Convert.ToHexString(theirs), Convert.ToHexString(ours));
    }

    [Theory]
    [InlineData("securemesh")]
    [InlineData("")]
    [InlineData("a comment with spaces and ünïcode")]
    [InlineData("1234567")]
    public void Ssh_keygen_reads_the_OpenSsh_export_back_to_the_same_public_key(string comment)
    {
        if (!File.Exists(SshKeygen))
        {
            return;
        }
        using var dir = new TempDir();
        using var identity = NodeIdentity.Generate();
        var path = dir.Combine("id_ed25519");
        // ssh-keygen refuses private keys readable by others.
        File.WriteAllText(path, KeyFormats.ExportOpenSsh(identity, comment));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        var psi = new ProcessStartInfo(SshKeygen)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-y");
        psi.ArgumentList.Add("-f");
        psi.ArgumentList.Add(path);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(10_000));
        Assert.True(process.ExitCode == 0, stderr);

        Assert.StartsWith("ssh-ed25519 ", stdout, StringComparison.Ordinal);
        Assert.Equal(identity.PublicKey, SshPublicKey(stdout));
    }

    [Theory]
    [InlineData("ssh-rsa", "RSA")]
    [InlineData("ssh-ecdsa", "ECDSA")]
    [InlineData("pkcs8-rsa.pem", "RSA")]
    [InlineData("pkcs8-ecdsa-p256.pem", "ECDSA")]
    public void Other_key_types_are_refused_by_name(string fixture, string found)
    {
        var e = Assert.Throws<SecureMeshException>(() => KeyFormats.Import(TestFixtures.Bytes(fixture)));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.Equal($"unsupported key type: only Ed25519 keys can be imported (found {found})", e.Message);
    }

    [Theory]
    [InlineData("RSA PRIVATE KEY", "RSA")]
    [InlineData("EC PRIVATE KEY", "ECDSA")]
    [InlineData("DSA PRIVATE KEY", "DSA")]
    public void Traditional_PEM_key_types_are_refused_by_name(string label, string found)
    {
        var pem = $"-----BEGIN {label}-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END {label}-----\n";
        var e = Assert.Throws<SecureMeshException>(() => KeyFormats.Import(Encoding.ASCII.GetBytes(pem)));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.EndsWith($"(found {found})", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_encrypted_OpenSsh_key_is_refused_with_the_way_out()
    {
        var e = Assert.Throws<SecureMeshException>(() => KeyFormats.Import(TestFixtures.Bytes("ssh-ed25519-encrypted")));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.Equal("encrypted OpenSSH keys are not supported; remove the passphrase with ssh-keygen -p first", e.Message);
    }

    [Fact]
    public void An_encrypted_Pkcs8_key_is_refused()
    {
        var pem = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAi\n-----END ENCRYPTED PRIVATE KEY-----\n";
        var e = Assert.Throws<SecureMeshException>(() => KeyFormats.Import(Encoding.ASCII.GetBytes(pem)));
        Assert.Contains("encrypted PKCS#8", e.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string> Garbage() =>
    [
        "",
        "hello world",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n!!!!\n-----END OPENSSH PRIVATE KEY-----\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAQNo0/uk2pXtrTTX2q0Dqqpq/2j0D/pllkGLWDmxvA1s=\n-----END PUBLIC KEY-----\n",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBDJ6+TvSVr6dw2Ahwmmr/rdQFDnSDhcspc5CzHp9aZc test",
    ];

    [Theory]
    [MemberData(nameof(Garbage))]
    public void Garbage_is_a_one_line_invalid_input_error(string text)
    {
        var e = Assert.Throws<SecureMeshException>(() => KeyFormats.Import(Encoding.UTF8.GetBytes(text)));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.DoesNotContain('\n', e.Message);
        Assert.NotEmpty(e.Message);
    }

    [Fact]
    public void Binary_junk_is_refused()
    {
        var e = Assert.Throws<SecureMeshException>(() => KeyFormats.Import(new byte[] { 0xff, 0x00, 0xc3, 0x28 }));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => KeyFormats.Import(new byte[100_000])).Kind);
    }

    [Theory]
    [InlineData("ssh-ed25519")]
    [InlineData("pkcs8-ed25519.pem")]
    public void Every_truncation_of_a_fixture_is_refused_without_key_material_in_the_message(string fixture)
    {
        var good = TestFixtures.Bytes(fixture);
        var secretLines = Encoding.ASCII.GetString(good).Split('\n').Where(l => l.Length > 0 && !l.StartsWith("-----", StringComparison.Ordinal)).ToArray();
        // Truncations that only remove the armour's trailing newline still parse; everything shorter must fail cleanly.
        for (var length = 0; length < good.Length - 1; length++)
        {
            var e = Assert.Throws<SecureMeshException>(() => KeyFormats.Import(good.AsSpan(0, length)));
            Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
            Assert.DoesNotContain('\n', e.Message);
            foreach (var line in secretLines)
            {
                Assert.DoesNotContain(line[..Math.Min(16, line.Length)], e.Message, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void Every_truncation_and_bit_flip_of_the_OpenSsh_blob_fails_only_with_our_exception()
    {
        using var identity = NodeIdentity.Generate();
        var blob = PemBody(KeyFormats.ExportOpenSsh(identity, "fuzz"));
        for (var length = 0; length < blob.Length; length++)
        {
            var e = Assert.Throws<SecureMeshException>(() => KeyFormats.Import(Wrap("OPENSSH PRIVATE KEY", blob[..length])));
            Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        }
        for (var i = 0; i < blob.Length * 8; i++)
        {
            var bad = (byte[])blob.Clone();
            bad[i / 8] ^= (byte)(1 << (i % 8));
            try
            {
                using var other = KeyFormats.Import(Wrap("OPENSSH PRIVATE KEY", bad));
                // Only bits in the check bytes' twin or the comment may flip without changing the key.
                Assert.Equal(identity.PeerId, other.PeerId);
            }
            catch (SecureMeshException e)
            {
                Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
            }
        }
    }

    [Fact]
    public void Every_truncation_and_bit_flip_of_the_Pkcs8_der_fails_only_with_our_exception()
    {
        using var identity = NodeIdentity.Generate();
        var der = PemBody(KeyFormats.ExportPkcs8Pem(identity));
        for (var length = 0; length < der.Length; length++)
        {
            var e = Assert.Throws<SecureMeshException>(() => KeyFormats.Import(Wrap("PRIVATE KEY", der[..length])));
            Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        }
        for (var i = 0; i < der.Length * 8; i++)
        {
            var bad = (byte[])der.Clone();
            bad[i / 8] ^= (byte)(1 << (i % 8));
            try
            {
                using var other = KeyFormats.Import(Wrap("PRIVATE KEY", bad));
            }
            catch (SecureMeshException e)
            {
                Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
            }
        }
    }

    private static byte[] SshPublicKey(string line)
    {
        var blob = Convert.FromBase64String(line.Split(' ')[1].Trim());
        return blob[^32..];
    }

    private static byte[] PemBody(string pem)
    {
        var lines = pem.Split('\n').Where(l => l.Length > 0 && !l.StartsWith("-----", StringComparison.Ordinal));
        return Convert.FromBase64String(string.Concat(lines));
    }

    private static byte[] Wrap(string label, byte[] body) =>
        Encoding.ASCII.GetBytes(body.Length == 0
            ? $"-----BEGIN {label}-----\n-----END {label}-----\n"
            : System.Security.Cryptography.PemEncoding.WriteString(label, body) + "\n");
}
