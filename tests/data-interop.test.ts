// Interoperability with the Python ecosystem, on data the real libraries wrote (one-off, embedded here so
// the test needs no Python):
//   - GOLDEN: ids from Python `tokenizers` 0.23.2 (Tokenizer.from_file on the tokenizer.json that
//     `trainTokenizer` writes for the Brown corpus at vocab 4096) for hard texts; our JS encoding must match.
//   - PY_DATASETS: folders written by Python `datasets` 5.0.1 `save_to_disk` (gzip+base64 of {path: bytes}):
//     `packed/` a DatasetDict of list<int32> rows (row i = [10i .. 10i+7], train in 2 shards, test = rows 0-4)
//     and `text/` a Dataset with prompt/text string columns in 3 shards.
//   - PY_MESSAGES: a `messages` column (list<struct<role, content>>) of 12 conversations, as a pyarrow 25
//     Parquet file (zstd, row groups of 5) and as a `datasets` save_to_disk folder.
// The other direction (datasets.load_from_disk on `wm data prepare` output) was checked with the same
// Python environment; see the data section of the report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { brownCorpusDocuments, loadTokenizer, openPackedDataset, prepareDataset, readRecords, trainTokenizer, DataRecord } from '../src/data';

const GOLDEN: { text: string; ids: number[] }[] = [
  { text: "héllo wörld — naïve café, Ελληνικά, русский, 日本語のテキスト, 한국어", ids: [109, 200, 174, 308, 116, 269, 200, 187, 119, 323, 37, 231, 133, 153, 302, 102, 200, 180, 312, 1343, 107, 200, 174, 49, 37, 211, 154, 211, 192, 211, 192, 211, 188, 211, 194, 211, 190, 211, 191, 211, 177, 49, 37, 214, 133, 214, 136, 214, 134, 214, 134, 213, 191, 213, 189, 213, 190, 49, 37, 235, 156, 170, 235, 161, 177, 237, 175, 163, 232, 134, 179, 232, 136, 139, 232, 135, 178, 232, 135, 190, 232, 136, 141, 49, 37, 242, 154, 161, 239, 186, 178, 241, 155, 185] },
  { text: "emoji 🎉👩‍👩‍👧 and flags 🇫🇷, combining é and zero​width", ids: [364, 116, 111, 110, 37, 245, 164, 147, 142, 245, 164, 150, 174, 231, 133, 146, 245, 164, 150, 174, 231, 133, 146, 245, 164, 150, 172, 294, 694, 480, 120, 37, 245, 164, 140, 176, 245, 164, 140, 188, 49, 2051, 1504, 306, 209, 134, 294, 3534, 270, 116, 231, 133, 144, 124, 319, 399] },
  { text: "  leading spaces, trailing spaces   \n\n\ttabs\tand\r\nCRLF\n\n\n", ids: [37, 1150, 289, 554, 3859, 49, 820, 2698, 554, 3859, 37, 37, 37, 15, 15, 14, 121, 401, 120, 14, 416, 18, 15, 72, 87, 81, 75, 15, 15, 15] },
  { text: "contractions: it's, we're, they've, I'm, you'll, he'd; numbers 3.14159 and 1,000,000", ids: [104, 858, 357, 1065, 63, 343, 366, 49, 350, 1668, 49, 484, 1847, 49, 396, 1707, 49, 406, 1247, 49, 315, 1273, 64, 3010, 885, 51, 54, 57, 54, 58, 62, 294, 425, 49, 1219, 49, 1219] },
  { text: "<|im_start|>user\nWrite a short passage.<|im_end|>\n<|im_start|>assistant\nThe Fulton County Grand Jury said Friday.<|im_end|>\n<|end_of_text|>", ids: [3, 395, 270, 15, 92, 119, 629, 263, 1596, 1137, 583, 51, 4, 15, 3, 565, 379, 411, 15, 334, 494, 623, 271, 3950, 479, 3330, 500, 1155, 559, 1320, 3994, 51, 4, 15, 1] },
];

const PY_DATASETS = [
  'H4sIAAT1CWsC/+1a23LiSBL9lYl+7Z2xBNhtNmIedEEXQMLCBoReNpBkhLCE3Ra2EBv771t5BCVu6unZ7eiZBxMho6xTWcrKzMpM',
  'Jf73p5dZ8PQYXoWz9Sx7XP8rjIP1b8vsefXpn798eiy620DfvISGFQ9i2TdXw2I6Sd7MOI/YfRI0ndh1hd8//eOX/Trrx2yNxX4V',
  '6PPr8xw34m+z19fnnBa9oo8YyZIkOVL56UlSS5IjSZOkSFIijMnyEZ7Td4fjPWdH71cBbtK3jG+aJLewEP3Rn+jui5kmb156S5th',
  '914ydYdikI635vI5Ypt98VeyGGrtF6/c8MGc0Y4eCo+unNB8WitUrQLKSNrVeOItfGOcmCshM5XuPDSS3Ls3b9i9NXNtwVyJ7bkr',
  'kFR9+jMzxiuvweRqeItpY7TbD/1RLVIVCa7KGHzi+ym3ntEfhSA9eQuMseA2kqcgL/nl3ST2Z0T6YPo1dnpydosQqmCSUi0qcaXK',
  'L6E+Xpd0JKnQa7CbiukRv70jST9D31q1iCXJU25XlehyuEOD7KEt6eDD7Dqt7PdMzw8qoUbS8ceRvuMz5Xdy9G28dwqZJ1uR6qee',
  'MHWq50Un82WJj1rVVIeLYuz0sDctJqnAoaq7iqnDlaLBVOB34erA4Soz0Dk/CnMuZGn1GHS+dyIp4fIq4P8KGjj8Br7Qh+luSbKr',
  'nX+yz+8XgwBFlHg1f64iSs4OiNJdztzhItSTdz+mg2HGfQnjT55rL4M0yS9gqTfRhNDtJkHBxo2sZyoSjZ8dWiWmcemIBwccz+bY',
  '08HBZGs4Wys2s4pXunyoo/0acruUC3Njtzm8DnQKElL8oCfbUDFL+QyhV83tPvsNMQl0bVU+l+8tm03sxF/Z5bNiszd3zhWarWfr',
  'x1NNzj1dE6bjdjqbbErNaDvNcA2xK/VefH38Np2Iu9BF2u+sLVXK2bX2G9Pdfedt6nYLvxnEpSbkNn2793kPu2ywddIwCVZyMZtc',
  'C1hrORKthpZOH5wNkyW1H6TWdDnd72zupe3CZ1ZwG/Y70+DaX8FKb+Fkk53PWTfZ81elhdftM5xr+Zjfb46FMvxpma+1l35jI/qT',
  'a4R1L9WyoDEqLZu0y3ymsPX1a9HX8zNNv87i1YUE1vhIYB8J7CyBmaU435HAyoD8JxOY/Mxv9ejbuELineUi79Kqxf+SwMrVW1xy',
  'qK406qTKOpAHmzYibhRkmS6ERJbCpF7Es8pblerMSpQDq+b8qVolWlDlqpxPsrEK8NtKVIeLOsYiETcN5NEdLrrPRZdv+f5NpzQ1',
  '+yyrrYyqrQDH7Ss/FIrAt9bP+da2lZDgb4DOudDXPMur4P8MOudGgdc7NLVDCpOh9WHO7QHR7oHT0ZKh1QeHa26IqoFwDfwQYgyc',
  'VCGjgJgAz7iSXOBkenleKa3DndrD+QX/qqo6EK9QQMxIPh3875V/gB+uiPNuwAgi0Y/AwX8DGjiqmDaqGJLPIPso8I8o50bCLheE',
  'mwE3WuzwKgeqXwK/5VXPE/3t0lTlAVUQ4d2A+2sKnOyrwD+wya7AS7Vnwnvgh3+8wClItUoKmh7dA/8rd5Ie+OEfrzl3mk1VZYEf',
  '/rHOedUF/3ij2z7ZR4F/vOf8/MA/csItGlDhNRuSz6JBFf5RAM8Qn+GUwMk+KlxPINy2uJOKhNukCtWtnJbso8KUTeDgn/MgMaBH',
  'qzj6LZJvAH6oDkYdgB/+cQMch2DNT+4d+OEftwTdIZ/AP9ok313wzQL0OIuLH1n8I4t/ZPGfmsU/45QiyuBAX9FT7hAlrqoM35Fx',
  '45AURE9lvAY79FSin2SITnROdEtGgnSIqUOvwUTfgyZcdmRkeYe2QjT4Z6CB50SHRBsR0bcytuZQguiQE8t4DWZ0l3AlkLFVh446',
  '0eBfE90HDv6caItw1ZSR5RltE66Cv0X0APgz0V+IviP5VEHGSWK0Q3iH+GWV6CHhnZGMLE80ydchfrlP9ANw8A9AE67RYizLO6QE',
  'osE/AQ2c4p3sET0h+bSM6EeiXcJ18C+InhKuWzKc3qEsTzT4X4ieAQd/RrQPnOzDsjyjA8IN8AtEh4QbZF+5SfQjyWeQfVipxeg5',
  'cPBfER0RbpJ9WZYnmuQziV+Bf8TAiV+Bf8TAyT4syzsUpBjdBT/844nwLtlXgX8kJF+X7KPAP1Lg4Id/rICTfVlEcCjLd8gJiIZ/',
  'vBDeAz/84ytwsg/L8ox+BQ5++EdGeJ/sq8A/1iRfn+yjwD/egIMf/vEOnOzLsjzRJJ9F/Cr8Y0O4Rfwq/GMDnOzDsrxDTkg08avw',
  'jy3hNtlXhX8IJJ9N9lHhHyJw8MM/GsDJvizLO5TlGT0AP/yjRfgA/PCPa+BkH5blGX0DHPzwjy/Ayb4q/OOW5Lsj+3xHFv/oI/2g',
  'PhI0+jMaSeZZI2m/zQP1xV6aZN7keuFPyi1Dhnshxxr34rsX7+7j60Ww6r6HxZE6wqpBRIXLuAgMmKBcazLaenpHtFWn6aXjJTWp',
  '7MLcN4JSv9lds6JqPm20s3AivmHPZVPobM6sGS6CNCwLtKZwhnMXOOZ/D91hHtIzJpvspAGWsrGtt2+sNe3c1xM01PzVOPOllzaZ',
  'bf24ufRrSvO0jJX+vzK2/z1lbPkyJVdvyH9UxuZB2l4HhnNesq5sISBeZo2T0nTCtCJ69912n2mFlX0ttOqMLPaM6mAEzSG1H1f1',
  'JS8vbcviRF+IXiOk1iXTup2UFZJcteTtJVMiVSkd7aBsOi1DBc9dlItamO9Q5aSgaArKyko+YHJGDm/pH5SJWNqQC3aA85CzOPxl',
  'plH9JCDtKrYJvXKzIdhjVx/Sm960fBk/EJNVKjqKMMjV4y1/+eIPF/r3/ITSr27z495M+QkuMRmX+JXooCC/VLFe/GFFiWpFU6qt',
  'TasfNiIu6qAqg83jn5AMKQ9ULbdW0jZQh7ntSo1ADfOBIV0HaodhnQ27CnYxvCOwS2QXm9NpsqvFLjbPZPNMNs9k80w2z6xeRsq+',
  'Akx5j3cRvEZkvHlRltExf9nfvQbkN0nm67dR6fdSbt4p8+Vzcjq+qRkvasa3NeNCzbhYM96oGW/WjLdqxq8vj5+XAcfRT/yIfh/R',
  '7+8Q/dT87xD91MpUT9Wrd86j3bh6n894V3Un38aiy2XXil1NaWMzmkXBjc1om9EsEm4GrlSweYVF3yt2NaWCzSvYvILNK9i8gs0r',
  'Bgc9kE7O+wNoVaKfqt3yVu8CrdSIt0Lfo9rot7EUNV+1broza8Bqzs27aQyTR8OJrIdOdNv9PIgnS/Urq6v8ovRNk0XsuohpFXVr',
  'OXVr1UXBjR3XrRXUrVUXCTeD+/1ad38Q/Rof0e8j+p1EP+eviH5y9U87o0tM2sXodzDY+quj35+LauVvaPghB2MIceUPYQF+SBrx',
  'kPc1P97fWYRYSjURwqyt6ay6aLO06taqq+sK+75urWndWnW1XTGoi87Lp3Itpis4dek5xxHtZ7RzjiLQQSvnsF2zDalfkAZxXQtm',
  'nGpZOBmd9TDonx8ff/Da9D3f9QNmenvtufLCa5RzWbTDuK8nS29yvd23fZSVUGn2Z7R1rB/b1inO2jq7ztlx941k91NtvVPtE0s2',
  'i/4DZCv6k3a6u9/2U61gZm/uu2tzh31rVbuGEofnkmskb0gubG1bXaS2Pi28yXA5XVqirYbpXt1uw3sPUnERnvxPEVo0ytmc17Ch',
  'FV6z7B7O789wnqyO+dtiaKDzuGAH6aQdRUnNTvZtrqApZzPX4f//BPP/57+xWeIJxCsAAA==',
].join('');

const PY_MESSAGES = [
  'H4sIAED2CWsC/81Y3ZOiuhL/V07t67l7Bj9mdrxV5yEBwoeighKEl1uCTlRAZwYd1FP3f7+dBBV33LV2n65VmJB0pzvdne5f+OdL',
  'Pi+KKZsXX2fFw2y6nX5V+O/r5kV0Gn9N39835Zd///Hlgf86DCOEXCR/XYTaCDNEEGJIZWIM46v5krf6eX6AqvfTKmLe4i0WLSdS',
  'FbGQWMHnvW9Wnu2i/Hk5WPJ+lIUTr5Hk9GitNmx+sLfRpH8Mg1mWHKwnyyyWUU4XM5MeopF8T/JOcepHpveYGD6shZZJyztMg8e1',
  'tSyZlXWU+QRnfE0rixaxSTNrrRSWaq/i5qMSBY9KJS+dmVkp1lPt48y0X+M8WfZUtJy0LmvTnBSzwF++TMQaLzUeZzrpK9a60YE5',
  'vsse/5uadB01YZ/NaBE2/co+/A+3uel5R8NikJ3tI00Z8j+V/xmNLGn1F1GTHsW0qQHnn5szv8e+47d4TyxKzk7BrzODbqUHOf9D',
  'eOLHHjrLw+j8M8Vgs7MDvt0MaRanB818Lgriw6z87F6YdCI0x+UlHi7yD3Fzn53ecTUv4u8g4s+/0JeIMGTwIdi/U8mBxuWDCGlM',
  'u9BCPIIyWj0eu+U5EuuEwp4uuv/TLkSDm/Ps1mj73DMu/JuL5OTc1etmPv1qJ6zG/3Y2I2h+rbt+a39yqZv6hbcGjR9bQb3EQ3gK',
  'qioflGfTSH+LKeE/wm7JF4r3Bb0IBWGVOf+z+VJqwbvKZVG+KhahO+ZLERHPMX+fcHpDCBFMM76emfJFhL4LPmU98/cxf19fjNJI',
  'mvQQQk7h5zSEcz+b9LMkJ8ekmR1nBtlBbjlGE3sBZ+0VcsgiXnv/xzz1YBCmWJyTji7sJewdCnvx0FSFq1blKf+qwol7bq8+n9KE',
  'qZ5lKuFuH3O3dV2dnwd4x13+Thm8Gwp/f+Tv6Tk+sTcLKOiafcRLVA4VsktakLuh31PxpnzKith4Zs/2n4Pl6LFOu6/R7u/QHmq0',
  'hzu0xxrt8Q6tUqNV7tA2arSNO7TNGm3zDm2rRtu6Q9uu0bbv0D7WaB/v+cLROjhe91vRxGLOGBWWsdLegn0RH7Ry3X6yexlpQF1W',
  'pkFnZ2n6le+cUcmmzuA1NvYf1lB9WW3SncjvMn3//eVff3wCJsV8+5/l+mXz16rYrDkgmZdQqKE4TyfeQirFi6u17CExnoLwVZJn',
  '5Y25PAoIHBz7BBi6lor4+PdAohqH5ww6fAFC1GU1zp+1/REbN8YBEPwAbHRrNOw7cBCEwb4B/RoN7ki9z/TXgKSsz3FdvQuQWfeV',
  'hIOng1V8r9stsFKneXE3t+Rf8Y0NSDpqpaupdC+09iZuAhgxyFru62z7Yhr0Mwgcqd/S6r64f39yeLGdbuffe/olMogS0k4+DfbS',
  'Q6Ty0LWnIKzoLgwaUkLOo0PfOhoq4dnGzbDq67twYh/iVlLtGnd4OxkJ7ywnTVgnh0hYY+41YWlrpTfCY5ZGmnuMNLJ0cqcRGeFp',
  'Zy9R3jnEEFmTZv8D4OM2Xjs8KnYzOBafabYtkL+WkbbtfJo/W/maP25RJTEp8JMiJh2IhH0jDh4FFI7Ai0nTl57OOsfE2L+Cd54s',
  '47ERG+UnS//1On1/28233Ma+TkaOx/83dKiXFGMf6ZDiuz3/42GE6JtblXhRXixblIxaGSIuotbCV3rY94mHKF74hqmFgLlkyTJQ',
  'Vi9Jnijv6rLRe1CYHvKy7AhU8Ma9KOCoi/F0oxLXpTlz6IYRh3guFRCi4jv6vgroVRMFitTTDXoQ8EL/WWlp752xdXCOjtKH4uQC',
  'ajBdFrXRSMdHZrjMTLTx1jc8H5FRm7pqSQn2XeKGsLeyCfim508owG3vNW62WV97Dkn6U3lXeybfbu5ZB4h9oOZU4Ci+9yGmgzH2',
  'u2DfEUeJ29FDx8Lf9ifYlRxPrV61VtU6Vctt5gdkxAribqiOfQP2kPQZIM61oxjIPjpYF8C+8nUvcE+XhA1G5cCCWwOPhzcy3jtc',
  'p7oPyDQ9wXbhZwGbjRocwdx+Fu1/tp8uoMuC2fU40j0BE6p9GvYJufJYEDphwBlu8IYWEKvRRiNTC495zNXt4zQI0PqoLL6HG43h',
  'PhQ3mVPp6t8oRf1V2OofWXswTm1ALUGJFcuYI32BkjZOLdxCyjeKU27XHfFRweOyble1UY/F9MHA0U/lXe95/nhrzxj5rpN5zVxM',
  'wN7HJR2nJVUXV+d0/nzynek0qrZZta2qbVftIz+zZOFvejy+rs6sfRx4TE2O/lXMqo30hO4B4jnaUg9FjHYX/vOY63QVo8HrCfUL',
  'PzPOi+s5gNtvTgA6EJdd2Q/LHBOqQT2OrmJ0OD/HqNOVLeBN1+lyfd6RThcI8gWsW49VWgAc7buqMO5VvtDL4T65ioubkGal71GJ',
  'EVlryYDmFIncgKizBD9cx7ZTzw3OWIcYmP187cXV/lx2a39smArfeyXtpZ9y9CBxqxuX6ewdkVvwEWRzO4/IyC24ba7OfwvoPKZB',
  '7iivYhBl9uVaB6FXWiAre+67KMTr/mpq0G0ItQJpvmqgxQU17X3I15EzFPdNXzeQV/BzTVwLzG6FuEmLCOoy9z3UEqqpnN8T133b',
  'xY4pY9uxBS3U0LXHaTOkl4nMh2UG9zYjaXYAifVrPGFojMtoqIbIBH5j7EOkoWhU162UutR00MVnIc93yMINdkgPWkjPQzW07tSt',
  'qCdjnYJfuG1dvr8hnqrIS3OVbSIqb7XimmszlIDeEdjO0AGUqbVPNBjqc9JyzQjwTBzwTyezM7IDnoDgmEFEPqHlNEeHOEXeb9ed',
  'H+gcd9Hins4p9/kHoOWVsBXbBHC+AgVsdUB+3mLu51qC00LWCV6f4Yx4Qu4z2DnCIK/62BHsURKoy9Aib6EBPM+/ZisZN9JO0zby',
  '4gSNpgagtd29+mKM5NnhNuA20bmeWhkwpkc223QNKr+AiO8KvxZT5vkzGJZx1YZi9Seg0CNK8yVjv10ffqTzgVl3dTZQdATceAib',
  'PtVw2CVvJSZbhO1du2dv3N6NnP+DeAl9ww1BHv+0C7IK14R4yN9ZGLyyEMEZzBEuQUbaAHToGj6zwFeQw+EWMHH0mN8W0CwDfL7l',
  'MY5NcXPiOlnk3QWdGLbfyr69dZ3fO4OhYoxCHXJVID81iKD+NZ0ueUfqtWMq2fK7IRqCbgOp1/76KjyGM1i/3qq/5sMV4nHn6icf',
  'qvd9qJMN+PAdfFgwz/5ou1KvPs/3ocjrPzuHrKzOofg0BGDKD7Aa+xqOpxhsa2LmuNQejRvJU9LsbyC2F4bNtN7h+aN36DxGio1d',
  'QPnwYPlssTuZYTefYS8lOFKIBo+cSzltQ/ZhbCR5VHhsyWtXa2SinSnneWgjncsc6LxPAYrLuWptcpEPDxX86jy3jnSdRU5GOY/k',
  'H7sfvJX6eKovedbX8qloAzmnybFkHxvOcZwvpk4WPVWyLE/ldtiKNXtCF1v3Ye98PrrSv9pjJnXktuGtlG+XkT4LZrocGylSx2Ak',
  'bCzXyOz63kD32n5BDzmXHgYTmnqNqBHpRB9Jfm4bKvdow7OQ/pGy1doaxEvlvt21nPf8KxnSx+ts6awXxWm8WuPa/mOlgzAkOIMc',
  'EqhPM7WxSky0re7YbJbTA2A58WmuP2qXgKWiIf/8f3oQ7vGvweIeyu+p//0fwNFwaZwaAAA=',
].join('');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-data-interop-'));

test('our Brown tokenizer encodes exactly like Python tokenizers', async () => {
  await trainTokenizer({ texts: brownCorpusDocuments(), vocabSize: 4096, outDir: path.join(dir, 'tok'), log: false });
  const tok = await loadTokenizer(path.join(dir, 'tok'));
  for (const g of GOLDEN) {
    assert.deepEqual(tok.encode(g.text), g.ids, JSON.stringify(g.text));
    assert.equal(tok.decode(g.ids), g.text);
  }
  // Same through the library path (no piece cache).
  tok.useFastPath = false;
  for (const g of GOLDEN) assert.deepEqual(tok.encode(g.text), g.ids);
});

test('folders written by Python datasets.save_to_disk open as packed splits and as text inputs', async () => {
  const files = JSON.parse(gunzipSync(Buffer.from(PY_DATASETS, 'base64')).toString('utf8')) as Record<string, string>;
  for (const [rel, b64] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), Buffer.from(b64, 'base64'));
  }
  for (const mode of ['memory', 'disk'] as const) {
    const train = await openPackedDataset(path.join(dir, 'packed'), { mode });
    assert.deepEqual([train.numRows, train.seqLen, train.maxTokenId], [50, 8, 497]);
    for (const i of [0, 17, 49]) assert.deepEqual(Array.from(train.row(i)), Array.from({ length: 8 }, (_, j) => i * 10 + j));
    const testSplit = await openPackedDataset(path.join(dir, 'packed', 'test'), { mode });
    assert.equal(testSplit.numRows, 5);
  }
  const rows: DataRecord[] = [];
  for await (const r of readRecords(path.join(dir, 'text'))) rows.push(r);
  assert.equal(rows.length, 30);
  assert.deepEqual(rows[29], { prompt: 'p29', text: 'héllo text 29 🎉' });
  // A DatasetDict as an input reads its train split (pre-tokenized rows).
  const ids: DataRecord[] = [];
  for await (const r of readRecords(path.join(dir, 'packed'))) ids.push(r);
  assert.equal(ids.length, 50);
  assert.deepEqual(Array.from(ids[3]!.inputIds!), [30, 31, 32, 33, 34, 35, 36, 37]);
});

test('chat datasets with a messages column (pyarrow Parquet, datasets folder) read and pack through the chat template', async () => {
  const files = JSON.parse(gunzipSync(Buffer.from(PY_MESSAGES, 'base64')).toString('utf8')) as Record<string, string>;
  for (const [rel, b64] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, 'msg', rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, 'msg', rel), Buffer.from(b64, 'base64'));
  }
  for (const input of ['messages.parquet', 'messages-ds']) {
    const rows: DataRecord[] = [];
    for await (const r of readRecords(path.join(dir, 'msg', input))) rows.push(r);
    assert.equal(rows.length, 12, input);
    assert.deepEqual(rows[7], {
      messages: [
        { role: 'user', content: 'Question 7?' },
        { role: 'assistant', content: 'Answer 7, héllo 🎉.' },
      ],
    });
  }
  const tok = await loadTokenizer(path.join(dir, 'tok'));
  const out = path.join(dir, 'msg-packed');
  const stats = await prepareDataset({ inputs: [path.join(dir, 'msg', 'messages.parquet')], tokenizer: tok, seqLen: 16, outDir: out, testExamples: 1, log: false });
  assert.equal(stats.inputs[0]!.chatDocuments, 12);
  const expected = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].reduce(
    (n, i) => n + tok.encodeChat([{ role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: `Answer ${i}, héllo 🎉.` }]).length + 1,
    0,
  );
  assert.equal(stats.tokens, expected);
});
